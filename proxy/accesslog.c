/* proxy/accesslog.c: being written */
