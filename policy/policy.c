/* policy/policy.c: being written */
