/* Clocks and durations. Durations are int64_t microseconds everywhere in Veltrix
 * (names end in _us); configuration and flags write them as strings with units. */
#ifndef VX_COMMON_TIMEUTIL_H
#define VX_COMMON_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_MS INT64_C(1000)
#define USEC_PER_SEC INT64_C(1000000)

int64_t time_mono_ns(void);
int64_t time_mono_us(void);
int64_t time_wall_ms(void);
/* 2026-11-27T07:21:26.123Z */
void time_fmt_rfc3339(char *out, size_t cap, int64_t wall_ms);
/* Sleeps, restarting after signals, for at least us microseconds. */
void time_sleep_us(int64_t us);

/* Parses a duration: one or more <number>[.<fraction>]<unit> groups, units us, ms, s, m, h
 * ("250ms", "1.5s", "1m30s"). A bare number is refused (a unit is required). Returns 0, or -1
 * with a message (for diagnostics) in why. */
int dur_parse(const char *s, int64_t *out_us, char *why, size_t whylen);
/* The shortest exact rendering: 1500000 -> "1.5s", 250000 -> "250ms", 90000000 -> "1m30s". */
void dur_format(int64_t us, char *out, size_t cap);

#endif
