/*
 * crc32c.c — CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for the
 * change log's frame checksums: a slicing-by-8 table implementation and the
 * SSE4.2 crc32 instruction, chosen once by a cpuid check.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#include "clog.h"

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void
crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = crc_table[0][i];
		for (int t = 1; t < 8; t++) {
			c = crc_table[0][c & 0xff] ^ (c >> 8);
			crc_table[t][i] = c;
		}
	}
}

uint32_t
crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	pthread_once(&crc_table_once, crc_table_init);
	crc = ~crc;
	while (len && ((uintptr_t) p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		/* Little-endian byte order of the 8-byte word, independent of host. */
		uint32_t lo = crc ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8 |
				     (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
		uint32_t hi = (uint32_t) p[4] | (uint32_t) p[5] << 8 |
			      (uint32_t) p[6] << 16 | (uint32_t) p[7] << 24;
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <nmmintrin.h>

bool
crc32c_hw_available(void)
{
	return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) uint32_t
crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t c = ~crc;
	while (len && ((uintptr_t) p & 7)) {
		c = _mm_crc32_u8((uint32_t) c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t word;
		memcpy(&word, p, 8);  /* x86 is little-endian, as the CRC wants */
		c = _mm_crc32_u64(c, word);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t) c, *p++);
	return ~(uint32_t) c;
}

#else

bool
crc32c_hw_available(void)
{
	return false;
}

uint32_t
crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	return crc32c_sw(crc, data, len);
}

#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn crc_impl;
static pthread_once_t crc_impl_once = PTHREAD_ONCE_INIT;

static void
crc_impl_init(void)
{
	crc_impl = crc32c_hw_available() ? crc32c_hw : crc32c_sw;
}

uint32_t
clog_crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_impl_once, crc_impl_init);
	return crc_impl(crc, data, len);
}
