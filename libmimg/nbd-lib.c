/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * libnbd loaded at first use (see nbd-lib.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "nbd-lib.h"

/* The library's ABI name: libnbd keeps it across releases. */
#define NBD_SONAME "libnbd.so.0"

struct mimg_nbd_lib mimg__nbd;
static char load_error[256]; /* empty when loaded */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	void *h = dlopen(NBD_SONAME, RTLD_NOW | RTLD_LOCAL);
	const char *missing = NULL;

	if (!h) {
		const char *e = dlerror();
		snprintf(load_error, sizeof(load_error), "%s",
			 e ? e : NBD_SONAME " not found");
		return;
	}
	/* dlsym's object pointer holds the function's address (POSIX):
	 * its bytes are copied into the pointer of the function's type. */
#define MIMG_NBD_RESOLVE(f)                                                    \
	if (!missing) {                                                        \
		void *p = dlsym(h, #f);                                        \
		if (p)                                                         \
			memcpy(&mimg__nbd.f, &p, sizeof(p));                   \
		else                                                           \
			missing = #f;                                          \
	}
	MIMG_NBD_FUNCTIONS(MIMG_NBD_RESOLVE)
#undef MIMG_NBD_RESOLVE
	if (missing) {
		snprintf(load_error, sizeof(load_error),
			 "%s has no function %s (too old?)", NBD_SONAME,
			 missing);
		dlclose(h);
		memset(&mimg__nbd, 0, sizeof(mimg__nbd));
	}
	/* Loaded for the rest of the process: handles may live that long. */
}

int mimg__nbd_load(const char *what)
{
	pthread_once(&load_once, load);
	if (load_error[0])
		return mimg_err(-ENOTSUP,
				"%s: NBD exports need libnbd, which could not "
				"be loaded: %s",
				what, load_error);
	return 0;
}
