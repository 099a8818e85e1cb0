/*
 * packed_ref.h — previous-value coding of packed images (Shape.value_refs,
 * proto/steward.proto).
 *
 * In a Batch, each packed image of a shape with value_refs codes every
 * non-NULL value against its column's reference: the column's last
 * non-NULL value in the earlier images of that shape in the batch (before
 * and after images alike, in record order); at the shape's first image in
 * a batch every reference is 0 and the empty text.
 *
 *   INT, UINT, DECIMAL, DATE and the first varint of DATETIME and TIMESTAMP:
 *       zigzag varint of (value - reference), both the plain coding's
 *       number as a 64-bit integer (INT and DECIMAL after zigzag decoding),
 *       wrapping; microseconds stay as in the plain coding
 *   DOUBLE, FLOAT: the value's bits XOR the reference's, same width
 *   TEXT: varint length of the prefix shared with the reference, varint
 *       length of the rest, the rest
 *
 * Consecutive rows' ids, times and amounts differ little and their texts
 * share prefixes: the images shrink and zstd, seeing repeats instead of
 * literals, compresses them several times faster.  The MySQL capture
 * codes values this way as it decodes them (mysql_row_decode_packed);
 * packed_refs_encode is the same coding over a plain image (the tests
 * hold the two equal), and readers decode back into the plain form before
 * printing the values.
 */
#ifndef STEWARD_PROTO_PACKED_REF_H
#define STEWARD_PROTO_PACKED_REF_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

/* One shape's references in one batch, and its columns' codecs. */
typedef struct packed_refs {
	size_t ncols;
	uint8_t *codec;        /* Steward__Codec per column */
	uint8_t *scale;        /* Column.scale per column */
	uint64_t *num;         /* numeric references */
	buf_t *text;           /* TEXT references */
	uint64_t batch;        /* the writer's: batch these references belong to (0: none) */
} packed_refs_t;

/* Length of the prefix a[0..n) and b[0..n) share: eight bytes at a time. */
static inline size_t
packed_shared_prefix(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t k = 0;
	for (; k + 8 <= n; k += 8) {
		uint64_t x, y;
		memcpy(&x, a + k, 8);
		memcpy(&y, b + k, 8);
		if (x != y)  /* the first differing byte: the lowest differing bits in memory order */
			return k + (size_t) (__builtin_ctzll(le64toh(x) ^ le64toh(y)) / 8);
	}
	if (k < n && n >= 8) {
		/* the last eight bytes, overlapping the equal ones before them */
		uint64_t x, y;
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, b + n - 8, 8);
		return x == y ? n : n - 8 + (size_t) (__builtin_ctzll(le64toh(x) ^ le64toh(y)) / 8);
	}
	while (k < n && a[k] == b[k])
		k++;
	return k;
}

/* memcpy for the few bytes of most values, without the library call; d and s apart. */
static inline void
packed_copy_small(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n >= 8 && n <= 16) {
		uint64_t x, y;
		memcpy(&x, s, 8);
		memcpy(&y, s + n - 8, 8);
		memcpy(d, &x, 8);
		memcpy(d + n - 8, &y, 8);
	} else if (n < 8) {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	} else {
		memcpy(d, s, n);
	}
}

/* Set up for ncols columns with the given codecs and scales (copied); references zero. */
void packed_refs_init(packed_refs_t *r, size_t ncols, const uint8_t *codec, const uint8_t *scale);
/* Every reference back to 0 / the empty text (a shape's first image in a batch). */
void packed_refs_reset(packed_refs_t *r);
void packed_refs_free(packed_refs_t *r);  /* accepts NULL; leaves r reusable by init */

/*
 * Code the plain packed image in[0..len) against r's references, appending
 * it to out, and make its values the references.  false with the reason in
 * why on a malformed plain image (references then undefined).
 */
bool packed_refs_encode(packed_refs_t *r, const uint8_t *in, size_t len, buf_t *out, char *why,
			size_t whylen);

/*
 * The inverse: decode a coded image (untrusted bytes) into its plain form,
 * appended to out, and make its values the references.  Every length and
 * varint is checked and nothing outside in[0..len) is read; false with the
 * reason in why (references then undefined: the batch is unreadable).
 */
bool packed_refs_decode(packed_refs_t *r, const uint8_t *in, size_t len, buf_t *out, char *why,
			size_t whylen);

#endif
