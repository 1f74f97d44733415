/* A scripted fake HTTP server for faults a real etcd cannot produce (an answer cut in half,
 * an oversize answer, a stream whose last message has no newline, revisions going backwards).
 * Connection i reads one request and gets script[i] (the last entry repeats) written raw,
 * then is closed, or held open until the server is freed when the entry ends with FX_HOLD. */
#ifndef VX_TESTS_FX_FAKE_H
#define VX_TESTS_FX_FAKE_H

#include <stddef.h>

#define FX_HOLD "\x01HOLD"

struct fx_fake;

/* Takes copies of the n entries. */
struct fx_fake *fx_fake_start(const char *const *script, size_t n);
const char *fx_fake_url(const struct fx_fake *f);
/* Requests served so far, and the body of request i (valid until the server is freed). */
int fx_fake_requests(struct fx_fake *f);
const char *fx_fake_request_body(struct fx_fake *f, int i);
void fx_fake_free(struct fx_fake *f);

#endif
