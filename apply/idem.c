/*
 * idem.c — SHA-256 (FIPS 180-4) and Idempotency-Key derivation.
 */
#include "idem.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void
sha256_compress(uint32_t st[8], const uint8_t blk[64])
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t) blk[4 * i] << 24 | (uint32_t) blk[4 * i + 1] << 16 |
		       (uint32_t) blk[4 * i + 2] << 8 | (uint32_t) blk[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
	uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
	for (int i = 0; i < 64; i++) {
		uint32_t S1 = ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = h + S1 + ch + K[i] + w[i];
		uint32_t S0 = ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = S0 + maj;
		h = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	st[0] += a; st[1] += b; st[2] += c; st[3] += d;
	st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

void
idem_sha256_init(idem_sha256_t *ctx)
{
	static const uint32_t H0[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	memcpy(ctx->state, H0, sizeof H0);
	ctx->total_len = 0;
	ctx->block_len = 0;
}

void
idem_sha256_update(idem_sha256_t *ctx, const void *data, size_t len)
{
	const uint8_t *p = data;
	ctx->total_len += len;
	while (len > 0) {
		size_t take = 64 - ctx->block_len;
		if (take > len)
			take = len;
		memcpy(ctx->block + ctx->block_len, p, take);
		ctx->block_len += take;
		p += take;
		len -= take;
		if (ctx->block_len == 64) {
			sha256_compress(ctx->state, ctx->block);
			ctx->block_len = 0;
		}
	}
}

void
idem_sha256_final(idem_sha256_t *ctx, uint8_t out[IDEM_SHA256_LEN])
{
	uint64_t bits = ctx->total_len * 8;
	/* Padding: 0x80, zeros to 56 mod 64, then the bit length big-endian. */
	ctx->block[ctx->block_len++] = 0x80;
	if (ctx->block_len > 56) {
		memset(ctx->block + ctx->block_len, 0, 64 - ctx->block_len);
		sha256_compress(ctx->state, ctx->block);
		ctx->block_len = 0;
	}
	memset(ctx->block + ctx->block_len, 0, 56 - ctx->block_len);
	for (int i = 0; i < 8; i++)
		ctx->block[56 + i] = (uint8_t) (bits >> (56 - 8 * i));
	sha256_compress(ctx->state, ctx->block);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t) (ctx->state[i] >> 24);
		out[4 * i + 1] = (uint8_t) (ctx->state[i] >> 16);
		out[4 * i + 2] = (uint8_t) (ctx->state[i] >> 8);
		out[4 * i + 3] = (uint8_t) ctx->state[i];
	}
}

void
idem_sha256(const void *data, size_t len, uint8_t out[IDEM_SHA256_LEN])
{
	idem_sha256_t ctx;
	idem_sha256_init(&ctx);
	idem_sha256_update(&ctx, data, len);
	idem_sha256_final(&ctx, out);
}

void
idem_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * len] = '\0';
}

/*
 * Canonical encoding of one component: a tag byte, then (for present
 * values) an 8-byte big-endian length and the bytes.  The tag keeps NULL
 * distinct from the empty string.
 */
static void
hash_component(idem_sha256_t *ctx, const void *p, size_t len, int present)
{
	uint8_t hdr[9];
	hdr[0] = present ? 1 : 0;
	if (!present) {
		idem_sha256_update(ctx, hdr, 1);
		return;
	}
	for (int i = 0; i < 8; i++)
		hdr[1 + i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
	idem_sha256_update(ctx, hdr, sizeof hdr);
	idem_sha256_update(ctx, p, len);
}

static void
hash_str(idem_sha256_t *ctx, const char *s)
{
	hash_component(ctx, s, s ? strlen(s) : 0, s != NULL);
}

static int
nullable_cmp(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int
field_cmp(const void *pa, const void *pb)
{
	const idem_field_t *a = *(const idem_field_t *const *) pa;
	const idem_field_t *b = *(const idem_field_t *const *) pb;
	int c = nullable_cmp(a->name, b->name);
	return c ? c : nullable_cmp(a->value, b->value);
}

void
idem_key(const char *entity, const char *entity_id, const char *target,
	 const position_t *pos, const idem_field_t *fields, size_t nfields,
	 char out[IDEM_KEY_LEN + 1])
{
	static const char domain[] = "steward-idempotency-v1";
	idem_sha256_t ctx;
	uint8_t digest[IDEM_SHA256_LEN];

	idem_sha256_init(&ctx);
	hash_component(&ctx, domain, sizeof domain - 1, 1);
	hash_str(&ctx, entity);
	hash_str(&ctx, entity_id);
	hash_str(&ctx, target);
	if (pos)
		hash_component(&ctx, pos->bytes, pos->len, 1);
	else
		hash_component(&ctx, NULL, 0, 0);

	const idem_field_t **sorted = xmalloc((nfields ? nfields : 1) * sizeof *sorted);
	for (size_t i = 0; i < nfields; i++)
		sorted[i] = &fields[i];
	qsort(sorted, nfields, sizeof *sorted, field_cmp);
	uint8_t count[8];
	for (int i = 0; i < 8; i++)
		count[i] = (uint8_t) ((uint64_t) nfields >> (56 - 8 * i));
	idem_sha256_update(&ctx, count, sizeof count);
	for (size_t i = 0; i < nfields; i++) {
		hash_str(&ctx, sorted[i]->name);
		hash_str(&ctx, sorted[i]->value);
	}
	free(sorted);

	idem_sha256_final(&ctx, digest);
	idem_hex(digest, sizeof digest, out);
}
