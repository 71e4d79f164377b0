/* mus/map.c: being written */
