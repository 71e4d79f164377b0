/* mus/proto.c: being written */
