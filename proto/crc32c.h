/*
 * crc32c.h — CRC32C (Castagnoli) implementations behind clog_crc32c.
 *
 * Internal to proto/: the change log uses clog_crc32c (proto/clog.h), which
 * picks the SSE4.2 instruction when the CPU has it and the table otherwise.
 * The two implementations are exported here only so tests can check that
 * they agree.
 */
#ifndef STEWARD_PROTO_CRC32C_H
#define STEWARD_PROTO_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Table (slicing-by-8) implementation; same contract as clog_crc32c. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

/* True when crc32c_hw may be called (x86-64 with SSE4.2). */
bool crc32c_hw_available(void);

/*
 * SSE4.2 implementation; same contract as clog_crc32c.  Only call it when
 * crc32c_hw_available() is true; elsewhere it falls back to crc32c_sw.
 */
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);

#endif
