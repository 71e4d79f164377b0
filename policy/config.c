/* policy/config.c: being written */
