/* proxy/dns.c: being written */
