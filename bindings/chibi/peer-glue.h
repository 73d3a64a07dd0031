/* What peer-glue.c (direct calls) and peer-jobs.c (blocking calls on pthreads) share. */
#ifndef PEER_GLUE_H
#define PEER_GLUE_H

#include <chibi/eval.h>
#include <stdint.h>

/* Copy a 32-byte bytevector into dst: 1, or 0 when it is not one. */
int peer_glue_copy32(uint8_t dst[32], sexp bv);

/* A fresh Scheme bytevector holding a copy of `len` bytes at `data`. */
sexp peer_glue_bytes(sexp ctx, const uint8_t *data, size_t len);

#endif
