/* Private to the registry model files (reg_*.c): helpers they share. */
#ifndef VX_REGISTRY_REG_INT_H
#define VX_REGISTRY_REG_INT_H

#include "registry/reg.h"

/* Sets reason and message (when fail is not NULL); returns -1. */
int reg_fail_set(struct reg_fail *fail, enum reg_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
