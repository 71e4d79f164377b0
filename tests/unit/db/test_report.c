#include <criterion/criterion.h>
#include "txntest.h"
