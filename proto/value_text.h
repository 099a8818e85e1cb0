/*
 * value_text.h — the text a column value reads as in a steward.Value
 * (docs/capture-mysql.md, "Text forms"), from its typed binary form: the
 * formatters the MySQL capture prints values with, and the decoder of a
 * packed image (steward.proto, Change.before_packed/after_packed), which
 * prints each value with the same formatters so a packed record reads
 * exactly as the text record of the same row.
 *
 * Every formatter appends to a buf_t (common/buf.h) without a NUL of its
 * own beyond buf's; none calls printf on its usual path: they run once per
 * value captured and once per packed value read.
 */
#ifndef STEWARD_PROTO_VALUE_TEXT_H
#define STEWARD_PROTO_VALUE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "steward.pb-c.h"

/* Decimal, '-' for negatives (INT64_MIN included). */
void value_text_int(int64_t v, buf_t *out);
void value_text_uint(uint64_t v, buf_t *out);

/*
 * The server's text of a DOUBLE: the shortest digits that read back as v,
 * plain notation when the decimal exponent is in [-14, 15] or the number
 * has a fraction, else 1.5e15 style; "0", "-0", "nan", "inf", "-inf".
 */
void value_text_double(double v, buf_t *out);
/* A FLOAT: 6 significant digits, correctly rounded, the same notation rules. */
void value_text_float(float v, buf_t *out);

/*
 * DECIMAL: unscaled / 10^scale with scale <= 18 and |unscaled| < 10^18:
 * integer digits ("0" when none), then '.' and exactly scale digits when
 * scale > 0; '-' only for a nonzero value.  Outside those bounds the text
 * is unspecified (value_text_packed rejects such values).
 */
void value_text_decimal(int64_t unscaled, unsigned scale, buf_t *out);

/*
 * DATE from year << 9 | month << 5 | day (the binlog's 3-byte form):
 * "YYYY-MM-DD", the year at least 4 digits ("%04u-%02u-%02u").
 */
void value_text_date(uint64_t packed, buf_t *out);

/*
 * DATETIME from (year * 13 + month) << 22 | day << 17 | hour << 12 |
 * minute << 6 | second (the binlog's DATETIME2 without its sign bit):
 * "YYYY-MM-DD HH:MM:SS", then when 0 < fsp <= 6 '.' and usec / 10^(6-fsp)
 * as exactly fsp digits.  Every field is printed at its width (the year's
 * 4 digits, the fraction's fsp) as the capture always printed them.
 */
void value_text_datetime(uint64_t packed, unsigned fsp, uint64_t usec, buf_t *out);

/*
 * TIMESTAMP from seconds since 1970 UTC: as value_text_datetime of that
 * time in UTC; 0 seconds with 0 microseconds is MySQL's zero timestamp
 * "0000-00-00 00:00:00" (with its fsp zero digits).
 */
void value_text_timestamp(uint64_t secs, unsigned fsp, uint64_t usec, buf_t *out);

/* Where value_text_packed put one column's value. */
typedef struct value_text_slot {
	size_t off;    /* text at text->data + off, NUL-terminated */
	size_t len;    /* its length without the NUL */
	bool is_null;  /* SQL NULL: no text (off and len 0) */
} value_text_slot_t;

/*
 * Decode a packed image of sh's columns (steward.proto, Codec): for column
 * i, slots[i] (sh->n_columns of them, the caller's) gets NULL or the text
 * its codec prints, appended to text followed by a NUL (text is not reset
 * first; offsets stay valid until the caller changes text, pointers do not
 * survive a later append).  Everything is checked: the bitmap's size,
 * every varint within the bytes and at most 64 bits, a known codec per
 * column, scale <= 18 (DECIMAL) or <= 6 (DATETIME, TIMESTAMP), |decimal| <
 * 10^18, DATE < 2^24, DATETIME < 2^39, TIMESTAMP seconds < 2^32,
 * microseconds < 2^24, no NULL bit for a column past the last, and the
 * values filling the bytes exactly.  false with the reason in why (naming
 * the column) on malformed bytes; never reads outside p[0..len).
 */
bool value_text_packed(const Steward__Shape *sh, const uint8_t *p, size_t len, buf_t *text,
		       value_text_slot_t *slots, char *why, size_t whylen);

#endif
