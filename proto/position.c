/*
 * position.c — byte encodings of source positions; see position.h.
 */
#include "position.h"

#include <stdio.h>
#include <string.h>

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t) (v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

bool
position_set(position_t *p, const uint8_t *bytes, size_t len)
{
	if (len > POSITION_MAX)
		return false;
	p->len = (uint8_t) len;
	if (len)
		memcpy(p->bytes, bytes, len);
	return true;
}

void
position_pg(position_t *p, uint64_t lsn, int phase, uint64_t seq)
{
	memset(p, 0, sizeof(*p));
	p->len = 17;
	put_be64(p->bytes, lsn);
	p->bytes[8] = (uint8_t) phase;
	put_be64(p->bytes + 9, seq);
}

bool
position_pg_parse(const position_t *p, uint64_t *lsn, int *phase, uint64_t *seq)
{
	if (p->len != 17)
		return false;
	*lsn = get_be64(p->bytes);
	*phase = p->bytes[8];
	*seq = get_be64(p->bytes + 9);
	return true;
}

void
position_mysql(position_t *p, uint64_t file_key, uint64_t offset, int phase, uint64_t seq)
{
	memset(p, 0, sizeof(*p));
	p->len = 25;
	put_be64(p->bytes, file_key);
	put_be64(p->bytes + 8, offset);
	p->bytes[16] = (uint8_t) phase;
	put_be64(p->bytes + 17, seq);
}

bool
position_mysql_parse(const position_t *p, uint32_t *epoch, uint64_t *file_no, uint64_t *offset,
		     int *phase, uint64_t *seq)
{
	if (p->len != 25)
		return false;
	uint64_t key = get_be64(p->bytes);
	if (epoch)
		*epoch = (uint32_t) (key >> POSITION_MYSQL_EPOCH_SHIFT);
	*file_no = key & ((UINT64_C(1) << POSITION_MYSQL_EPOCH_SHIFT) - 1);
	*offset = get_be64(p->bytes + 8);
	*phase = p->bytes[16];
	*seq = get_be64(p->bytes + 17);
	return true;
}

void
position_hex(const position_t *p, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < p->len && o + 2 < outlen; i++) {
		out[o++] = hex[p->bytes[i] >> 4];
		out[o++] = hex[p->bytes[i] & 15];
	}
	if (outlen)
		out[o < outlen ? o : outlen - 1] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
position_from_hex(position_t *p, const char *hex)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > POSITION_MAX)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		p->bytes[i] = (uint8_t) (hi << 4 | lo);
	}
	p->len = (uint8_t) (n / 2);
	return true;
}
