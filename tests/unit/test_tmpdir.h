/*
 * test_tmpdir.h — scratch directories for the unit tests that write a
 * change log (header-only: each test program includes it once).
 */
#ifndef STEWARD_TESTS_TMPDIR_H
#define STEWARD_TESTS_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

static int
test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

/* A fresh directory named after what (heap); on tmpfs when there is one, so fsync costs nothing. */
static char *
test_make_tmpdir(const char *what)
{
	struct stat st;
	const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
				   access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char *tmpl = xasprintf("%s/steward-%s-XXXXXX", base, what);
	assert_non_null(mkdtemp(tmpl));
	return tmpl;
}

/* Remove dir and everything in it; frees dir. */
static void
test_remove_tree(char *dir)
{
	nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

#endif
