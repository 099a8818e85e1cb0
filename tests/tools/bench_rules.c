/*
 * bench_rules.c — field decisions per second of rules_resolve on one core.
 *
 *   bench_rules RULES_FILE [SECONDS]
 *
 * Loads a rules file with the demo estate's shape (docs/examples/estate.yaml),
 * builds a golden customer and a realistic mix of captured changes (owner
 * updates, echoes of Steward's own writes, conflicts, a fallback fill, an
 * invoice settled by a payment), and resolves them round-robin.  Prints
 * the rate of each run and, last, "decisions_per_s <n>" (best run).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "rules.h"

struct tchange {
	Steward__Change c;
	Steward__Value vals[16];
	Steward__Value *ptrs[16];
};

static void
tc(struct tchange *t, const char *src, const char *schema, const char *table, Steward__Op op)
{
	memset(t, 0, sizeof(*t));
	Steward__Change init = STEWARD__CHANGE__INIT;
	t->c = init;
	t->c.source = (char *)src;
	t->c.schema = (char *)schema;
	t->c.table = (char *)table;
	t->c.has_op = true;
	t->c.op = op;
	t->c.after = t->ptrs;
}

static void
col(struct tchange *t, const char *name, const char *text)
{
	Steward__Value init = STEWARD__VALUE__INIT;
	Steward__Value *v = &t->vals[t->c.n_after];
	*v = init;
	v->name = (char *)name;
	v->has_is_null = true;
	v->is_null = text == NULL;
	v->text = (char *)text;
	t->ptrs[t->c.n_after++] = v;
}

/*
 * CPU time of this thread: the rate per core even when the machine is
 * shared (wall time would count the time other processes held the core).
 */
static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_rules RULES_FILE [SECONDS]\n");
		return 2;
	}
	double seconds = argc > 2 ? atof(argv[2]) : 1.0;
	rules_diags_t diags = RULES_DIAGS_INIT;
	rules_t *r;
	if (rules_load(argv[1], &r, &diags) != RULES_OK) {
		buf_t b = BUF_INIT;
		rules_diags_format(&diags, &b);
		fprintf(stderr, "%s", b.data ? b.data : "cannot load rules\n");
		return 1;
	}
	rules_diags_free(&diags);
	char err[256];
	rules_golden_t *cust = rules_golden_from_json(r,
		"{\"entity\":\"customer\",\"keys\":{\"erp\":\"C001\",\"crm\":\"001A\",\"billing\":\"cus_1\"},"
		"\"fields\":{\"customer_no\":{\"value\":\"C001\",\"owner\":\"erp\"},\"name\":{\"value\":\"Acme\",\"owner\":\"crm\"},"
		"\"email\":{\"value\":null,\"owner\":\"crm\"},\"phone\":{\"value\":\"+49 30 1234\",\"owner\":\"crm\"},"
		"\"status\":{\"value\":\"active\",\"owner\":\"crm\"},\"credit_limit\":{\"value\":\"5000\",\"owner\":\"erp\"},"
		"\"blocked\":{\"value\":\"false\",\"owner\":\"erp\"}}}", err, sizeof err);
	rules_golden_t *inv = rules_golden_from_json(r,
		"{\"entity\":\"invoice\",\"keys\":{\"erp\":\"INV-7\"},\"fields\":{\"invoice_no\":{\"value\":\"INV-7\",\"owner\":\"erp\"},"
		"\"status\":{\"value\":\"open\",\"owner\":\"erp\"},\"amount\":{\"value\":\"120\",\"owner\":\"erp\"}}}", err, sizeof err);
	if (cust == NULL || inv == NULL) {
		fprintf(stderr, "golden: %s\n", err);
		return 1;
	}
	enum { NCH = 6 };
	struct tchange t[NCH];
	/* CRM edits the customer master: accepted, sent to the ERP and billing. */
	tc(&t[0], "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE);
	col(&t[0], "id", "001A"), col(&t[0], "name", "Acme GmbH"), col(&t[0], "email", "info@acme.example"),
		col(&t[0], "phone", "+49 30 1234"), col(&t[0], "status", "active"), col(&t[0], "credit_limit", "5000.00"),
		col(&t[0], "external_id", "C001");
	/* Our write to the ERP coming back: echoes. */
	tc(&t[1], "erp", "public", "customers", STEWARD__OP__OP_UPDATE);
	col(&t[1], "customer_no", "C001"), col(&t[1], "name", "Acme"), col(&t[1], "email", NULL),
		col(&t[1], "credit_limit", "5000.00"), col(&t[1], "blocked", "f");
	/* The CRM raising the credit limit: conflict, repaired. */
	tc(&t[2], "crm", "crm", "accounts", STEWARD__OP__OP_UPDATE);
	col(&t[2], "id", "001A"), col(&t[2], "credit_limit", "9000.00"), col(&t[2], "name", "Acme"),
		col(&t[2], "phone", "+49 30 9999");
	/* Billing filling the empty email (fallback). */
	tc(&t[3], "billing", "billing", "customers", STEWARD__OP__OP_UPDATE);
	col(&t[3], "id", "cus_1"), col(&t[3], "email", "ap@acme.example"), col(&t[3], "name", "Acme"),
		col(&t[3], "erp_customer_no", "C001");
	/* The ERP changing the credit limit and blocking. */
	tc(&t[4], "erp", "public", "customers", STEWARD__OP__OP_UPDATE);
	col(&t[4], "customer_no", "C001"), col(&t[4], "name", "Acme"), col(&t[4], "credit_limit", "7500.00"),
		col(&t[4], "blocked", "t");
	/* A payment settling an open invoice (conditional owner). */
	tc(&t[5], "billing", "billing", "payments", STEWARD__OP__OP_INSERT);
	col(&t[5], "id", "pay_1"), col(&t[5], "invoice_no", "INV-7"), col(&t[5], "status", "succeeded"),
		col(&t[5], "amount", "120.00"), col(&t[5], "currency", "EUR");
	rules_mapped_t *m[NCH];
	rules_golden_t *g[NCH];
	for (int i = 0; i < NCH; i++) {
		m[i] = rules_mapped_new();
		rules_map_status_t st = rules_map(r, &t[i].c, m[i], err, sizeof err);
		if (i == 5 && st == RULES_MAP_OK)
			st = rules_map_next(r, &t[i].c, m[i], err, sizeof err);
		if (st != RULES_MAP_OK) {
			fprintf(stderr, "change %d: cannot map: %s\n", i, err);
			return 1;
		}
		g[i] = i == 5 ? inv : cust;
	}
	rules_decision_t *d = rules_decision_new();
	double best = 0;
	uint64_t sink = 0;
	for (int run = 0; run < 3; run++) {
		uint64_t decisions = 0;
		double start = now(), elapsed;
		do {
			for (int k = 0; k < 4096; k++) {
				int i = k % NCH;
				rules_resolve(r, g[i], m[i], d);
				decisions += d->nfields;
				sink += d->nwrites;
			}
			elapsed = now() - start;
		} while (elapsed < seconds);
		double rate = (double)decisions / elapsed;
		printf("run %d: %llu field decisions in %.3f s of CPU = %.0f/s\n", run + 1, (unsigned long long)decisions,
		       elapsed, rate);
		if (rate > best)
			best = rate;
	}
	if (sink == 0)
		fprintf(stderr, "no writes planned: the mix is not realistic\n");
	printf("decisions_per_s %.0f\n", best);
	for (int i = 0; i < NCH; i++)
		rules_mapped_free(m[i]);
	rules_decision_free(d);
	rules_golden_free(cust);
	rules_golden_free(inv);
	rules_free(r);
	return 0;
}
