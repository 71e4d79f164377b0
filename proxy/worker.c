/* proxy/worker.c: being written */
