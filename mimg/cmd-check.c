/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * mimg check: consistency check and repair, with qemu-img's output,
 * JSON keys and exit codes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void check_help(void)
{
	printf("Usage: mimg check [-f fmt] [-r leaks|all] [-T mode] [--output "
	       "human|json] [-q]\n"
	       "                  [--image-opts] FILE\n"
	       "\n"
	       "Check FILE's metadata for consistency.  Exit status: 0 "
	       "clean, 1 check\nnot completed, 2 corruptions, 3 leaked "
	       "clusters, 63 format has no check.\n"
	       "\n"
	       "  -f FMT          the image format (default: probe)\n"
	       "  --image-opts    FILE is driver=FMT,file.filename=PATH,"
	       "key-secret=ID\n"
	       "  -r leaks|all    repair leaks, or leaks and corruptions\n"
	       "  -T MODE         cache mode: writeback (default), none, "
	       "writethrough,\n"
	       "                  directsync, unsafe\n"
	       "  --output FMT    human (default) or json\n"
	       "  -q              quiet\n" CLI_HELP_FORCE_SHARE CLI_HELP_OBJECT
	       "  -h, --help      this help\n");
}

static int exit_status(const struct mimg_check_result *r)
{
	if (r->check_errors)
		return EXIT_ERR;
	if (r->corruptions)
		return EXIT_CHECK_CORRUPT;
	if (r->leaks)
		return EXIT_CHECK_LEAKS;
	return EXIT_OK;
}

/* What a check found, line by line: on stderr, as qemu's drivers print
 * it while they check, whatever the output format and -q. */
static void print_messages(const struct mimg_check_result *r)
{
	for (char **m = r->messages; m && *m; m++)
		fprintf(stderr, "%s\n", *m);
}

/* What a repair fixed (FIRST), then the check of the repaired image (R,
 * which is FIRST where nothing was repaired). */
static void print_human(const char *file, const struct mimg_check_result *first,
			const struct mimg_check_result *r, bool quiet)
{
	if (quiet)
		return;
	if (r != first)
		printf("The following inconsistencies were found and repaired:"
		       "\n\n    %" PRIu64 " leaked clusters\n    %" PRIu64
		       " corruptions\n\nDouble checking the fixed image "
		       "now...\n",
		       first->leaks_fixed, first->corruptions_fixed);
	if (!r->corruptions && !r->leaks && !r->check_errors) {
		printf("No errors were found on the image.\n");
	} else {
		if (r->corruptions)
			printf("\n%" PRIu64 " errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the "
			       "image may corrupt it.\n",
			       r->corruptions);
		if (r->leaks)
			printf("\n%" PRIu64
			       " leaked clusters were found on the "
			       "image.\nThis means waste of disk space, but no "
			       "harm to data.\n",
			       r->leaks);
		if (r->check_errors)
			printf("\n%" PRIu64 " internal errors have occurred "
			       "during the check.\n",
			       r->check_errors);
	}
	if (r->total_clusters && r->allocated_clusters)
		printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
		       "fragmented, %0.2f%% compressed clusters\n",
		       r->allocated_clusters, r->total_clusters,
		       r->allocated_clusters * 100.0 / r->total_clusters,
		       r->fragmented_clusters * 100.0 / r->allocated_clusters,
		       r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
	(void)file;
}

/* qemu-img's ImageCheck as JSON. */
static int print_json(const char *file, const char *format,
		      const struct mimg_check_result *r)
{
	struct mimg_value *o;
	if (mimg_check_report(r, file, format, &o) < 0)
		return cli_error("%s", mimg_errmsg());
	char *json = mimg_value_to_json(o);
	mimg_value_free(o);
	if (!json)
		return cli_error("out of memory");
	printf("%s\n", json);
	free(json);
	return EXIT_OK;
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"repair", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	struct cli_args ca = {.cmd = "check",
			      .help = check_help,
			      .longopts = CLI_FORMAT | CLI_OUTPUT |
					  CLI_FORCE_SHARE | CLI_IMAGE_OPTS};
	struct mimg_check_result res = {.size = sizeof(res)};
	unsigned repair = 0, flags = 0, cache = 0;
	struct mimg *img;
	int c, r;

	while ((c = cli_getopt(&ca, argc, argv, ":f:r:T:qUh", longopts)) >= 0) {
		switch (c) {
		case 'T':
			if (cli_cache_flags(optarg, &cache, true) != 0)
				return EXIT_ERR;
			break;
		case 'r':
			if (strcmp(optarg, "leaks") == 0)
				repair = MIMG_CHECK_REPAIR_LEAKS;
			else if (strcmp(optarg, "all") == 0)
				repair = MIMG_CHECK_REPAIR_LEAKS |
					 MIMG_CHECK_REPAIR_ERRORS;
			else
				return cli_usage_error("check",
						       "Unknown option value "
						       "for -r (expecting "
						       "'leaks' or 'all'): %s",
						       optarg);
			break;
		}
	}
	if (!cli_one_file(&ca, c, argc, argv))
		return ca.status;
	/* With its backing chain, as qemu-img opens it: an image whose
	 * backing file is missing fails to open. */
	flags = MIMG_OPEN_CHECK | cache | (repair ? MIMG_OPEN_RDWR : 0);
	if ((r = cli_open_arg(&img, &ca, argv[optind], flags)) < 0)
		return cli_error("%s", cli_errmsg());
	r = mimg_check(img, repair, &res);
	if (r < 0) {
		/* What the check found before it failed, then why, as
		 * qemu-img says both. */
		print_messages(&res);
		mimg_check_result_free(&res);
		cli_error("Check failed: %s", mimg_errmsg());
		mimg_close(img);
		return EXIT_ERR;
	}
	if (!res.supported) {
		mimg_close(img);
		cli_error("This image format does not support checks");
		return EXIT_CHECK_UNSUPPORTED;
	}
	/* After a repair, qemu-img checks the image again and reports that
	 * check, with what was repaired. */
	struct mimg_check_result again = {.size = sizeof(again)}, *final = &res;
	print_messages(&res);
	if (res.leaks_fixed || res.corruptions_fixed) {
		if (mimg_check(img, 0, &again) < 0) {
			cli_error("%s", mimg_errmsg());
			mimg_check_result_free(&res);
			mimg_close(img);
			return EXIT_ERR;
		}
		print_messages(&again);
		again.leaks_fixed = res.leaks_fixed;
		again.corruptions_fixed = res.corruptions_fixed;
		final = &again;
	}
	if (ca.output == OUTPUT_JSON)
		print_json(argv[optind], mimg_format(img), final);
	else
		print_human(argv[optind], &res, final, ca.quiet);
	int status = exit_status(final);
	mimg_check_result_free(&res);
	if (final == &again)
		mimg_check_result_free(&again);
	if ((r = mimg_close(img)) < 0) {
		cli_error("%s", mimg_errmsg());
		return EXIT_ERR;
	}
	return status;
}
