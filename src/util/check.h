// VARVE_CHECK: a broken invariant is fatal, with a message naming the place.
#pragma once

#include <cstdio>
#include <cstdlib>

#define VARVE_CHECK(cond)                                                                 \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: VARVE_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
