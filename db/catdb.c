/* db/catdb.c: being written */
