/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * qemu-img's "json:{...}" name for an image an --image-opts string gave
 * options its file name cannot say (a raw window, a key secret), as info
 * prints it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* TEXT as a JSON string, quotes included, as qemu writes one (the
 * library's writer, given TEXT as a string value). */
static bool put_json_string(FILE *out, const char *text)
{
	struct mimg_value v = {.type = MIMG_VALUE_STRING, .v.s = (char *)text};
	char *json = mimg_value_to_json(&v);
	bool ok = json && fputs(json, out) >= 0;
	free(json);
	return ok;
}

/* The members of qemu's "json:" names, in the order qemu prints them
 * (its dictionaries' order, as observed from qemu-img 7.2). */
static const char *const json_members[] = {
	"offset", "encrypt.key-secret", "driver", "size", "file", "key-secret",
};

/* The "json:" name's members into OUT: GIVEN holds the values the option
 * string gave each of json_members (the driver is FORMAT, the file
 * FILE_DRIVER's PATH).  False when out of memory. */
static bool put_json_name(FILE *out, const char *const *given,
			  const char *format, const char *file_driver,
			  const char *path)
{
	bool ok = fputs("json:{", out) >= 0, first = true;
	for (size_t m = 0;
	     ok && m < sizeof(json_members) / sizeof(*json_members); m++) {
		const char *k = json_members[m];
		bool file = strcmp(k, "file") == 0;
		const char *v = strcmp(k, "driver") == 0 ? format : given[m];
		if (!file && !v)
			continue;
		ok = fputs(first ? "" : ", ", out) >= 0 &&
		     put_json_string(out, k) && fputs(": ", out) >= 0;
		first = false;
		if (file)
			ok = ok && fputs("{\"driver\": ", out) >= 0 &&
			     put_json_string(out, file_driver) &&
			     fputs(", \"filename\": ", out) >= 0 &&
			     put_json_string(out, path) &&
			     putc('}', out) != EOF;
		else
			ok = ok && put_json_string(out, v);
	}
	return ok && putc('}', out) != EOF;
}

char *cli_image_json_name(const char *path, const char *format)
{
	const char *spec = cli_image_spec(path, NULL, NULL);
	struct mimg_opt *opts = NULL;
	int n = spec ? mimg_opts_parse(spec, &opts) : -1;
	const char *given[sizeof(json_members) / sizeof(*json_members)] = {0};
	const char *file_driver = "file";
	bool more = false; /* than the driver, which a file name says */
	for (int i = 0; i < n; i++) {
		if (strcmp(opts[i].key, "file.driver") == 0)
			file_driver = opts[i].value;
		for (size_t m = 0; m < sizeof(given) / sizeof(*given); m++)
			if (strcmp(opts[i].key, json_members[m]) == 0) {
				given[m] = opts[i].value;
				more = more ||
				       strcmp(json_members[m], "driver");
			}
	}
	char *name = NULL;
	size_t len;
	FILE *out = more ? open_memstream(&name, &len) : NULL;
	if (out) {
		bool ok = put_json_name(out, given, format, file_driver, path);
		if (fclose(out) != 0 || !ok) {
			free(name);
			name = NULL;
		}
	}
	mimg_opts_free(opts, n > 0 ? (size_t)n : 0);
	return name;
}
