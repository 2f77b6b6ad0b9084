/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Shared pieces of the mimg command-line tool.
 */
#ifndef MIMG_CLI_H
#define MIMG_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "mimg.h"

/* Exit codes, as qemu-img's. */
enum {
	EXIT_OK = 0,
	EXIT_ERR = 1,
	/* check */
	EXIT_CHECK_CORRUPT = 2,
	EXIT_CHECK_LEAKS = 3,
	EXIT_CHECK_UNSUPPORTED = 63,
};

int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_checksum(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_rebase(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_dd(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_amend(int argc, char **argv);
int cmd_bitmap(int argc, char **argv);

/* Print FMT's options for "-o help" as qemu-img does (WHICH:
 * MIMG_OPTS_*); returns the exit status. */
int cli_opts_help(const char *fmt, unsigned which);

/* The qemu-img release whose behaviour mimg follows, reported by
 * --version when run as "qemu-img". */
#define CLI_QEMU_IMG_VERSION "7.2.0"

/* Program name for messages: "mimg", or "qemu-img" when invoked through a
 * link of that name. */
extern const char *cli_prog;
bool cli_qemu_personality(void);

/* "mimg: <message>" on stderr; returns EXIT_ERR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: message plus the "Try 'mimg CMD --help'" hint. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* getopt_long's failure C (':' for a missing argument, '?' for an
 * unknown option, with an optstring starting with ':') as qemu-img words
 * it, as a usage error of CMD; returns EXIT_ERR. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* qemu-img's cache modes (-t, or -T for a SOURCE) as MIMG_OPEN_* flags;
 * prints the error and returns EXIT_ERR for an unknown mode. */
int cli_cache_flags(const char *mode, unsigned *flags, bool source);
/* The same without the message: false for an unknown mode. */
bool cli_cache_mode(const char *mode, unsigned *flags);
/* NAME as a path: relative names are taken relative to IMAGE's directory,
 * as backing file names are.  malloc'ed; NULL when out of memory. */
char *cli_relative_to(const char *image, const char *name);

enum output_format { OUTPUT_HUMAN, OUTPUT_JSON };
/* Parse --output's argument; false if invalid (message printed). */
bool cli_parse_output(const char *arg, enum output_format *out);

/* The options commands share (args.c).  Every command takes --help and
 * --object; these bits name the other shared long options it takes. */
enum {
	CLI_FORMAT = 1u << 0,	   /* --format, as -f */
	CLI_OUTPUT = 1u << 1,	   /* --output human|json */
	CLI_FORCE_SHARE = 1u << 2, /* --force-share, as -U */
	CLI_IMAGE_OPTS = 1u << 3,  /* --image-opts */
	CLI_UNTRUSTED = 1u << 4,   /* --untrusted */
	/* -t CACHE (no long option): the cache mode of the image the
	 * command writes, into cache_flags (as the command set it when -t
	 * is not given). */
	CLI_CACHE = 1u << 5,
};
struct cli_args {
	/* Set by the command. */
	const char *cmd; /* for usage errors */
	void (*help)(void);
	unsigned longopts; /* CLI_* */
	int fail_status;   /* exit status of a bad --object (0: EXIT_ERR) */
	/* The shared options given. */
	const char *fmt;
	bool quiet, progress, force_share, image_opts;
	unsigned open_flags;  /* MIMG_OPEN_UNTRUSTED */
	unsigned cache_flags; /* -t with CLI_CACHE: cli_cache_flags' */
	enum output_format output;
	/* The status to exit with after CLI_ARGS_STOP. */
	int status;
	/* cli_image_arg's file name and format (malloc'ed), and the open
	 * flags the option string asks for (MIMG_OPEN_DIRECT,
	 * MIMG_OPEN_NO_FLUSH), for the command to add to its own. */
	char *image_path, *image_fmt, *image_secret;
	unsigned image_flags;
	struct option table[24]; /* cli_getopt's: the command's and shared */
};
enum { CLI_ARGS_STOP = -2 };
/* getopt_long over SHORTOPTS (starting with ':') and LONGOPTS (the
 * command's own long options, NULL for none) plus the shared ones, taking
 * the shared options (-f, -p, -q, -U and -h where SHORTOPTS has them, -t
 * with CLI_CACHE)
 * itself.  Returns the next option for the command, -1 after the last,
 * or CLI_ARGS_STOP when the command must return A->status now: EXIT_OK
 * after its help was printed, else after a message. */
int cli_getopt(struct cli_args *a, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);
/* After cli_getopt's last return C: the one file name a command of one
 * image takes, or NULL when the command must return A->status now (C is
 * CLI_ARGS_STOP, or there is not exactly one name left: a usage error
 * "Expecting one image file name" of A->cmd). */
const char *cli_one_file(struct cli_args *a, int c, int argc, char **argv);
/* With --image-opts (A->image_opts), replace the image argument *FILEP,
 * an option string, by the file name it names and *FMTP by its format,
 * and set A->image_flags; else change nothing.  WRITABLE: the command
 * opens the image read-write (read-only=on and force-share=on refuse
 * it).  The key-secret it names goes to *SECRETP (for cli_open_id), or
 * when SECRETP is NULL is the one cli_open uses.  For the commands that
 * need the name itself (to open the image again, or to resolve names
 * relative to it); the others use cli_open_arg.  Once per A: the
 * strings live in A until cli_args_free.  -1 with a message printed on
 * error. */
int cli_image_arg(struct cli_args *a, const char **filep, const char **fmtp,
		  bool writable, const char **secretp);
/* Free what cli_image_arg kept in A. */
void cli_args_free(struct cli_args *a);
/* Append TEXT to the -o list *ACC (malloc'ed; several -o add up, as in
 * qemu-img); EXIT_ERR with a message printed when out of memory. */
int cli_append_opts(char **acc, const char *text);
/* -l SNAPSHOT (snapshot-arg.c): cli_snapshot_check checks ARG while the
 * options are read, cli_snapshot_select makes IMG read the snapshot it
 * names; each returns 0, or EXIT_ERR with qemu-img's words printed. */
int cli_snapshot_check(const char *arg);
int cli_snapshot_select(struct mimg *img, const char *arg);
/* qemu's on/off values, as it parses them everywhere: on/yes/true/y and
 * off/no/false/n into *OUT; -1 for anything else (the caller says so in
 * its command's words). */
int cli_parse_onoff(const char *v, bool *out);
/* A number given as a size (suffixes k, M, G, T, P, E) between MIN and
 * MAX into *OUT, as qemu-img's cvtnum reads one: 0, or EXIT_ERR with its
 * words for WHAT ("Invalid WHAT specified. ...") printed.  CLI_NUM_MAX is
 * its usual MAX. */
#define CLI_NUM_MAX ((uint64_t)INT64_MAX)
int cli_parse_num(const char *what, const char *text, uint64_t min,
		  uint64_t max, uint64_t *out);

/* qemu's size_to_str: "1 GiB", "196 KiB", "0.977 KiB". */
void cli_format_size(char *buf, size_t len, uint64_t bytes);

/* Human rendering of an ImageInfo object, as qemu-img info prints it. */
void cli_print_info_human(FILE *out, const struct mimg_value *info);
/* The "Snapshot list:" table of an info "snapshots" array. */
void cli_print_snapshots(FILE *out, const struct mimg_value *snaps);
/* qemu's nested "key: value" dump of a value, keys with '-' as ' '. */
void cli_dump_value(FILE *out, const struct mimg_value *v, int indent);

/* The help lines of shared options that say the same in every command
 * (concatenated into a command's help text). */
#define CLI_HELP_OBJECT                                                        \
	"  --object secret,id=ID,data=TEXT|file=PATH[,format=raw|base64]\n"    \
	"                    a secret (LUKS passphrase)\n"
#define CLI_HELP_FORCE_SHARE                                                    \
	"  -U, --force-share  accepted for qemu-img compatibility (mimg takes " \
	"no locks)\n"

/* Secrets (secret.c).  --object is OPT_OBJECT in every command that
 * opens or creates images; --image-opts is OPT_IMAGE_OPTS. */
enum { OPT_OBJECT = 0x1000, OPT_IMAGE_OPTS, OPT_OUTPUT, OPT_UNTRUSTED };
/* Add "secret,id=ID,data=...|file=PATH[,format=raw|base64]"; -1 with a
 * message printed when it is invalid. */
int cli_object_add(const char *spec);
/* Every --object secret, as the library takes secrets named by id
 * (mimg_amend_secrets); at most MAX.  Valid until exit. */
size_t cli_named_secrets(struct mimg_named_secret *out, size_t max);
/* mimg_open with the secret --image-opts named (key-secret=ID) or, when
 * none was named, the only --object secret given.  A failure's message
 * (cli_errmsg) is qemu-img's "Could not open 'PATH': reason". */
int cli_open(struct mimg **imgp, const char *path, const char *format,
	     unsigned flags);
/* cli_open for describing only: an encrypted image opens without its
 * secret (cli_open refuses it). */
int cli_open_header(struct mimg **imgp, const char *path, const char *format,
		    unsigned flags);
/* cli_open with the secret ID (NULL: as cli_open). */
int cli_open_id(struct mimg **imgp, const char *path, const char *format,
		unsigned flags, const char *id);
/* cli_open_id of PATH given on the command line as DISPLAY (an option
 * string), which its message names. */
int cli_open_named(struct mimg **imgp, const char *path, const char *format,
		   unsigned flags, const char *id, const char *display);
/* The --image-opts string that named the file PATH, or NULL, and the
 * format options it gave (raw's offset and size: *N of them at *OPTS;
 * OPTS and N may be NULL),
 * which every cli_open of PATH passes on; its failures name the string,
 * as qemu-img's do. */
const char *cli_image_spec(const char *path, const struct mimg_opt **opts,
			   size_t *n);
/* qemu-img's name for the image PATH of FORMAT when an --image-opts
 * string named it with options its file name cannot say (a window, a
 * secret): "json:{...}", malloc'ed; NULL when there are none (or out
 * of memory): it is named by its file. */
char *cli_image_json_name(const char *path, const char *format);
/* mimg_create_flags (FLAGS: MIMG_CREATE_*), or mimg_create_secret when
 * OPTS hold key-secret=ID. */
/* True for the option naming a creation secret: key-secret (luks) or
 * encrypt.key-secret (qcow2). */
bool cli_is_key_secret(const char *key);
int cli_create(const char *path, const char *format, uint64_t size,
	       const struct mimg_opt *opts, size_t nopts, unsigned flags);
/* Open the image argument ARG of a command (image-opts.c): with
 * --image-opts (A->image_opts) ARG is such an option string (its
 * read-only and force-share checked against FLAGS, its cache flags
 * added to them), else a file name of format A->fmt.  cli_open
 * otherwise; the message for a failure is cli_errmsg(). */
int cli_open_arg(struct mimg **imgp, const struct cli_args *a, const char *arg,
		 unsigned flags);
/* What qemu-img prints when it opens PATH, probed as raw, for writing
 * (cli_open does when asked to write): writes are then kept from making
 * sector 0 look like another format. */
void cli_warn_probed_raw(const char *path);
/* The message for the last failure of cli_open/cli_create (theirs, or
 * libmimg's). */
const char *cli_errmsg(void);
/* Set the message cli_errmsg gives (printf's FMT), or clear it (NULL). */
void cli_set_errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The secret cli_open uses (key-secret=ID of --image-opts), NULL for
 * none named; -1 with the message set when out of memory. */
int cli_choose_secret(const char *id);

/* -r RATE (ratelimit.c): parse it (EXIT_ERR with qemu-img's message
 * printed when invalid); pace a single-threaded copy to RATE bytes a
 * second: cli_rate_wait before each transfer of BYTES (0 = no limit). */
int cli_parse_rate(const char *arg, uint64_t *rate);
struct cli_rate {
	uint64_t rate, bytes;
	double start; /* seconds, CLOCK_MONOTONIC */
};
void cli_rate_init(struct cli_rate *r, uint64_t rate);
void cli_rate_wait(struct cli_rate *r, uint64_t bytes);

/* The output files a command creates, removed when it fails or is
 * interrupted (outfiles.c).  Usage: cli_outfiles_before (the directory as
 * it was), cli_outfiles_block, create the output, cli_outfiles_after
 * (arms SIGINT/SIGTERM/SIGHUP/SIGPIPE), ..., cli_outfiles_end(REMOVE). */
struct cli_file_id {
	dev_t dev;
	ino_t ino;
};
struct cli_outfiles {
	char *dir, *stem, *data_file;
	bool data_file_existed, unknown, listed, blocked;
	char **before;
	size_t n_before;
	char **created;
	struct cli_file_id *ids;
	size_t n_created;
	sigset_t old_mask;
	struct sigaction old_sa[4];
	unsigned handled;
};
int cli_outfiles_before(struct cli_outfiles *o, const char *target,
			const char *data_file);
void cli_outfiles_block(struct cli_outfiles *o);
int cli_outfiles_after(struct cli_outfiles *o);
void cli_outfiles_end(struct cli_outfiles *o, bool remove);

/* -p's progress on stdout, as qemu-img prints it (progress.c); the end
 * prints 100 once more when the work was DONE, then a newline. */
struct cli_progress {
	bool enabled;
	float last; /* the value printed last */
	float step; /* printed when it moved further: 1 (compare: 2) */
	bool printed;
};
void cli_progress_init(struct cli_progress *p, bool requested);
void cli_progress_cb(void *opaque, uint64_t done, uint64_t total);
void cli_progress_end(struct cli_progress *p, bool done);
/* Walk [0, SIZE) in the runs STEP takes: STEP handles the run at OFF
 * (LEFT bytes remain) and sets *PNUM to its length (1 to LEFT).  Draws
 * the progress bar when SHOW.  Returns STEP's first non-zero return (its
 * message printed by STEP), else 0. */
int cli_progress_walk(uint64_t size, bool show,
		      int (*step)(void *opaque, uint64_t off, uint64_t left,
				  uint64_t *pnum),
		      void *opaque);

#endif
