/* proxy/conn.c: being written */
