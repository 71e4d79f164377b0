/* mus/client.c: being written */
