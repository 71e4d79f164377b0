/* proxy/loop.c: being written */
