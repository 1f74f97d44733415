/* Log-linear histogram (see hist.h). */
#include "load/hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

int hist_bucket_of(int64_t v)
{
	if (v < HIST_SUB)
		return v < 0 ? 0 : (int)v;
	if (v > HIST_MAX_US)
		v = HIST_MAX_US;
	int e = 63 - __builtin_clzll((unsigned long long)v);
	int shift = e - HIST_SUB_BITS;
	int sub = (int)(v >> shift) - HIST_SUB;
	return HIST_SUB + shift * HIST_SUB + sub;
}

int64_t hist_bucket_low(int b)
{
	if (b < HIST_SUB)
		return b;
	int shift = (b - HIST_SUB) / HIST_SUB;
	int sub = (b - HIST_SUB) % HIST_SUB;
	return (int64_t)(HIST_SUB + sub) << shift;
}

int64_t hist_bucket_high(int b)
{
	if (b < HIST_SUB)
		return b;
	int shift = (b - HIST_SUB) / HIST_SUB;
	return hist_bucket_low(b) + (INT64_C(1) << shift) - 1;
}

void hist_record(struct hist *h, int64_t v)
{
	if (v < 0)
		v = 0;
	h->counts[hist_bucket_of(v)]++;
	if (h->total == 0 || v < h->min_us)
		h->min_us = v;
	if (v > h->max_us)
		h->max_us = v;
	h->total++;
	h->sum_us += (double)v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (src->total == 0)
		return;
	for (int i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	if (dst->total == 0 || src->min_us < dst->min_us)
		dst->min_us = src->min_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
	dst->total += src->total;
	dst->sum_us += src->sum_us;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int64_t hist_percentile(const struct hist *h, double p)
{
	if (h->total == 0)
		return 0;
	if (p >= 100.0)
		return h->max_us;
	double want = p / 100.0 * (double)h->total;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want || rank == 0)
		rank++;
	uint64_t seen = 0;
	for (int b = 0; b < HIST_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen >= rank) {
			int64_t lo = hist_bucket_low(b), hi = hist_bucket_high(b);
			return clamp(lo + (hi - lo + 1) / 2, h->min_us, h->max_us);
		}
	}
	return h->max_us;
}

int64_t hist_mean(const struct hist *h)
{
	return h->total ? (int64_t)(h->sum_us / (double)h->total + 0.5) : 0;
}

uint64_t hist_count_above(const struct hist *h, int64_t v)
{
	uint64_t n = 0;
	for (int b = hist_bucket_of(v) + 1; b < HIST_BUCKETS; b++)
		n += h->counts[b];
	return n;
}
