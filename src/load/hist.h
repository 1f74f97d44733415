/* A log-linear latency histogram with bounded memory: 128 exact buckets below 128 us, then
 * 128 buckets per power of two up to 2^32 us (about 71 minutes). Each bucket is at most 1/128
 * of its value wide and is read back at its midpoint, so a percentile is within 0.4% of the
 * exact sample (plus a rounding of 1 us) from 1 us to 1 h, whatever the number of samples or
 * the length of the run (26 KiB). Histograms merge by adding buckets, so per-thread and
 * per-second histograms combine without loss. Pure: no I/O, no allocation. */
#ifndef VX_LOAD_HIST_H
#define VX_LOAD_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_GROUPS (32 - HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB + HIST_GROUPS * HIST_SUB)
/* Values above this are counted in the top bucket (max_us still keeps the real maximum). */
#define HIST_MAX_US ((INT64_C(1) << 32) - 1)

struct hist {
	uint64_t total;
	int64_t min_us;
	int64_t max_us;
	double sum_us;
	uint64_t counts[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, int64_t v_us);
void hist_merge(struct hist *dst, const struct hist *src);
/* Nearest rank: the smallest recorded value v such that at least p percent of the samples are
 * <= v (p in [0, 100]; 100 gives the exact maximum). 0 when empty. */
int64_t hist_percentile(const struct hist *h, double p);
int64_t hist_mean(const struct hist *h);
/* Samples above v_us (at bucket precision). */
uint64_t hist_count_above(const struct hist *h, int64_t v_us);

/* Bucket geometry, exposed for the tests. */
int hist_bucket_of(int64_t v_us);
int64_t hist_bucket_low(int b);
int64_t hist_bucket_high(int b); /* inclusive */

#endif
