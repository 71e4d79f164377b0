/* proxy/http.c: being written */
