/*
 * packed_ref.c — previous-value coding of packed images (packed_ref.h).
 */
#include "packed_ref.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record_encode.h"
#include "steward.pb-c.h"
#include "xalloc.h"

void
packed_refs_init(packed_refs_t *r, size_t ncols, const uint8_t *codec, const uint8_t *scale)
{
	memset(r, 0, sizeof(*r));
	r->ncols = ncols;
	size_t n = ncols ? ncols : 1;
	r->codec = xmalloc(n);
	r->scale = xmalloc(n);
	if (ncols) {
		memcpy(r->codec, codec, ncols);
		memcpy(r->scale, scale, ncols);
	}
	r->num = xcalloc(n, sizeof(*r->num));
	r->text = xcalloc(n, sizeof(*r->text));
}

void
packed_refs_reset(packed_refs_t *r)
{
	memset(r->num, 0, r->ncols * sizeof(*r->num));
	for (size_t i = 0; i < r->ncols; i++)
		r->text[i].len = 0;
}

void
packed_refs_free(packed_refs_t *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ncols; i++)
		buf_free(&r->text[i]);
	free(r->codec);
	free(r->scale);
	free(r->num);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

static inline uint8_t *
put_varint(uint8_t *o, uint64_t v)
{
	while (v >= 0x80) {
		*o++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*o++ = (uint8_t) v;
	return o;
}

static inline uint64_t
zigzag(uint64_t v)
{
	return (v << 1) ^ (uint64_t) ((int64_t) v >> 63);
}

static inline uint64_t
unzigzag(uint64_t v)
{
	return (v >> 1) ^ -(v & 1);
}

/* Does the codec's number go through zigzag in the plain coding? */
static inline bool
plain_is_zigzag(int codec)
{
	return codec == STEWARD__CODEC__CODEC_INT || codec == STEWARD__CODEC__CODEC_DECIMAL;
}

#define BAD(...)                                                                    \
	do {                                                                        \
		char what_[120];                                                    \
		snprintf(what_, sizeof(what_), __VA_ARGS__);                        \
		snprintf(why, whylen, "column %zu of the packed image: %s", i, what_); \
		out->len = out_start;                                               \
		return false;                                                       \
	} while (0)

/*
 * The walk shared by both directions: `coding` true reads a plain image
 * and writes the coded one, false the reverse.  The bitmap is copied.
 * Room is made once: a value grows by at most 20 bytes either way (a
 * varint of 1 byte becomes one of 10; a text's one length becomes two,
 * or its shared bytes come back), and texts are copied with room of their own.
 */
static bool
refs_walk(packed_refs_t *r, bool coding, const uint8_t *in, size_t len, buf_t *out, char *why,
	  size_t whylen)
{
	size_t ncols = r->ncols, nb = (ncols + 7) / 8, i = 0, out_start = out->len;
	if (len < nb) {
		snprintf(why, whylen, "packed image of %zu bytes is shorter than its NULL bitmap", len);
		return false;
	}
	const uint8_t *bitmap = in, *q = in + nb, *end = in + len;
	buf_reserve(out, len + 20 * ncols + 1);
	uint8_t *o = (uint8_t *) out->data + out->len;
	memcpy(o, bitmap, nb);
	o += nb;
	for (i = 0; i < ncols; i++) {
		if (bitmap[i / 8] >> (i % 8) & 1)
			continue;
		int codec = r->codec[i];
		uint64_t v;
		switch (codec) {
		case STEWARD__CODEC__CODEC_INT:
		case STEWARD__CODEC__CODEC_UINT:
		case STEWARD__CODEC__CODEC_DECIMAL:
		case STEWARD__CODEC__CODEC_DATE:
		case STEWARD__CODEC__CODEC_DATETIME:
		case STEWARD__CODEC__CODEC_TIMESTAMP:
			if (!record_varint_get(&q, end, &v))
				BAD("bad varint");
			if (coding) {
				uint64_t x = plain_is_zigzag(codec) ? unzigzag(v) : v;
				o = put_varint(o, zigzag(x - r->num[i]));
				r->num[i] = x;
			} else {
				uint64_t x = r->num[i] + unzigzag(v);
				o = put_varint(o, plain_is_zigzag(codec) ? zigzag(x) : x);
				r->num[i] = x;
			}
			if ((codec == STEWARD__CODEC__CODEC_DATETIME ||
			     codec == STEWARD__CODEC__CODEC_TIMESTAMP) && r->scale[i]) {
				if (!record_varint_get(&q, end, &v))
					BAD("bad microseconds varint");
				o = put_varint(o, v);
			}
			break;
		case STEWARD__CODEC__CODEC_DOUBLE:
		case STEWARD__CODEC__CODEC_FLOAT: {
			size_t w = codec == STEWARD__CODEC__CODEC_DOUBLE ? 8 : 4;
			if ((size_t) (end - q) < w)
				BAD("value needs %zu bytes, %zu left", w, (size_t) (end - q));
			uint64_t bits = buf_get_le(q, (unsigned) w), x = bits ^ r->num[i];
			for (size_t k = 0; k < w; k++)
				o[k] = (uint8_t) (x >> (8 * k));
			o += w;
			r->num[i] = coding ? bits : x;
			q += w;
			break;
		}
		case STEWARD__CODEC__CODEC_TEXT: {
			buf_t *ref = &r->text[i];
			uint64_t shared, rest;
			const uint8_t *src;
			if (coding) {
				if (!record_varint_get(&q, end, &v) || v > (uint64_t) (end - q))
					BAD("bad text length");
				size_t n = (size_t) v, max = n < ref->len ? n : ref->len;
				size_t k = max ? packed_shared_prefix((const uint8_t *) ref->data, q, max) : 0;
				shared = k;
				rest = n - k;
				src = q + k;
				o = put_varint(o, shared);
				o = put_varint(o, rest);
			} else {
				if (!record_varint_get(&q, end, &shared) || !record_varint_get(&q, end, &rest))
					BAD("bad text lengths");
				if (shared > ref->len)
					BAD("text shares %" PRIu64 " bytes with a reference of %zu",
					    shared, ref->len);
				if (rest > (uint64_t) (end - q))
					BAD("text of %" PRIu64 " more bytes overruns the image", rest);
				src = q;
				/* the plain text: its length, the shared bytes, the rest */
				out->len = (size_t) ((char *) o - out->data);
				buf_reserve(out, (size_t) shared + 20 * (ncols - i) + 10);
				o = (uint8_t *) out->data + out->len;
				o = put_varint(o, shared + rest);
				if (shared)
					memcpy(o, ref->data, (size_t) shared);
				o += shared;
			}
			/* the rest, as it is, to out and after the reference's shared bytes */
			out->len = (size_t) ((char *) o - out->data);
			buf_reserve(out, (size_t) rest + 20 * (ncols - i) + 1);
			o = (uint8_t *) out->data + out->len;
			if (rest)
				memcpy(o, src, (size_t) rest);
			o += rest;
			ref->len = (size_t) shared;  /* shared <= its length: the prefix stays */
			if (shared + rest + 1 > ref->cap)
				buf_reserve(ref, (size_t) rest);
			if (rest)
				memcpy(ref->data + shared, src, (size_t) rest);
			ref->len = (size_t) (shared + rest);
			q = src + rest;
			break;
		}
		default:
			BAD("unknown codec %d", codec);
		}
	}
	out->len = (size_t) ((char *) o - out->data);
	if (q != end) {
		out->len = out_start;
		snprintf(why, whylen, "packed image has %zu bytes after its last value",
			 (size_t) (end - q));
		return false;
	}
	return true;
}

bool
packed_refs_encode(packed_refs_t *r, const uint8_t *in, size_t len, buf_t *out, char *why,
		   size_t whylen)
{
	return refs_walk(r, true, in, len, out, why, whylen);
}

bool
packed_refs_decode(packed_refs_t *r, const uint8_t *in, size_t len, buf_t *out, char *why,
		   size_t whylen)
{
	return refs_walk(r, false, in, len, out, why, whylen);
}
