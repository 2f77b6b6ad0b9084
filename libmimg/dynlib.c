/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Libraries loaded at first use (see dynlib.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dynlib.h"
#include "error.h"

/* A library: the names it may have (its ABI names, tried in order), the
 * names of its functions in the order of the pointers in TABLE. */
struct dynlib {
	const char *name, *needed_by;
	const char *const *sonames;
	const char *const *functions;
	size_t nfunctions;
	void *table;
	size_t table_size;
	bool tried;	 /* under load_lock */
	char error[256]; /* empty once loaded */
};

#define FUNCTION_NAME(f) #f,
/* Every pointer of a library's struct has one size and no padding
 * between: the Nth is at N times that size. */
#define FUNCTION_SIZE sizeof(void (*)(void))
#define DYNLIB(var, what, needed, table, list, ...)                            \
	static const char *const var##_sonames[] = {__VA_ARGS__, NULL};        \
	static const char *const var##_functions[] = {list(FUNCTION_NAME)};    \
	_Static_assert(sizeof(table) == sizeof(var##_functions) /              \
						sizeof(char *) *               \
						FUNCTION_SIZE,                 \
		       what " table");                                         \
	static struct dynlib var = {                                           \
		what,                                                          \
		needed,                                                        \
		var##_sonames,                                                 \
		var##_functions,                                               \
		sizeof(var##_functions) / sizeof(char *),                      \
		&table,                                                        \
		sizeof(table),                                                 \
	}

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void resolve(struct dynlib *l, void *h)
{
	for (size_t i = 0; i < l->nfunctions; i++) {
		void *p = dlsym(h, l->functions[i]);
		if (!p) {
			snprintf(l->error, sizeof(l->error),
				 "%s has no function %s (too old?)",
				 l->sonames[0], l->functions[i]);
			memset(l->table, 0, l->table_size);
			dlclose(h);
			return;
		}
		/* dlsym's object pointer holds the function's address
		 * (POSIX): its bytes go into the pointer of the function's
		 * type. */
		memcpy((char *)l->table + i * FUNCTION_SIZE, &p, sizeof(p));
	}
	/* Loaded for the rest of the process: what it made may live that
	 * long. */
}

static void load(struct dynlib *l)
{
	void *h = NULL;

	for (size_t i = 0; !h && l->sonames[i]; i++) {
		h = dlopen(l->sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (!h && !l->error[0]) { /* the first name's reason */
			const char *e = dlerror();
			snprintf(l->error, sizeof(l->error), "%s",
				 e ? e : l->sonames[i]);
		}
	}
	if (!h)
		return;
	l->error[0] = 0;
	resolve(l, h);
}

/* Load L once (later calls give the first's result): 0, or -ENOTSUP
 * with a message naming WHAT. */
static int load_once(struct dynlib *l, const char *what)
{
	pthread_mutex_lock(&load_lock);
	if (!l->tried) {
		l->tried = true;
		load(l);
	}
	pthread_mutex_unlock(&load_lock);
	if (l->error[0])
		return mimg_err(-ENOTSUP,
				"%s: %s need %s, which could not be loaded: %s",
				what, l->needed_by, l->name, l->error);
	return 0;
}

/* libarchive has kept its ABI name since 3.0. */
struct mimg_archive_lib mimg__libarchive;
DYNLIB(archive, "libarchive", "compressed files and tar archives",
       mimg__libarchive, MIMG_ARCHIVE_FUNCTIONS, "libarchive.so.13");

int mimg__archive_lib_load(const char *what)
{
	return load_once(&archive, what);
}

/* OpenSSL's ABI name since 3.0. */
struct mimg_crypto_lib mimg__libcrypto;
DYNLIB(crypto, "libcrypto", "encryption and digests", mimg__libcrypto,
       MIMG_CRYPTO_FUNCTIONS, "libcrypto.so.3");

int mimg__crypto_lib_load(const char *what)
{
	return load_once(&crypto, what);
}

#ifdef MIMG_HAVE_LIBNBD
struct mimg_nbd_lib mimg__nbd;
DYNLIB(nbd, "libnbd", "NBD exports", mimg__nbd, MIMG_NBD_FUNCTIONS,
       "libnbd.so.0");

int mimg__nbd_load(const char *what)
{
	return load_once(&nbd, what);
}
#endif

#ifdef MIMG_HAVE_LIBXML2
/* libxml2's ABI name: .so.2 until 2.13, .so.16 from 2.14. */
struct mimg_xml_lib mimg__libxml2;
DYNLIB(xml, "libxml2", "OVF descriptors", mimg__libxml2, MIMG_XML_FUNCTIONS,
       "libxml2.so.2", "libxml2.so.16");

/* libxml2 2.9 must be initialised once before threads use it. */
static pthread_once_t xml_init_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	mimg__libxml2.xmlInitParser();
}

int mimg__xml_lib_load(const char *what)
{
	int r = load_once(&xml, what);
	if (r == 0)
		pthread_once(&xml_init_once, xml_init);
	return r;
}
#endif
