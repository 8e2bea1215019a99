/*
 * spf_query.c - test driver for the SPF helper pool (spf_client.c), used
 * by the RFC 7208 conformance test (t/integration/20_spf_rfc7208.t).
 *
 * usage: spf_query --helper PATH --resolver IP@PORT --receiver NAME
 *            [--timeout MS]
 *
 * Reads lines "client_ip<TAB>helo<TAB>sender<TAB>identity" on stdin
 * (identity: mailfrom or helo; sender may be empty for <>), and prints
 * one line "result<TAB>explanation<TAB>comment" per input line, flushed
 * at once, so that a test can talk to it line by line. Tabs and line
 * ends inside the answer fields are printed as spaces.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "spf_client.h"

#define SPF_QUERY_LINE_MAX	4096

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: spf_query --helper PATH --resolver IP@PORT "
	    "--receiver NAME [--timeout MS]\n");
	exit(2);
}

/* flat - tabs and line ends to spaces, so each answer stays one line */
static const char *
flat(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if (*p == '\t' || *p == '\r' || *p == '\n')
			*p = ' ';
	return s;
}

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "helper", required_argument, NULL, 'h' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "receiver", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct spf_pool_params params;
	struct spf_pool *pool;
	struct spf_query q;
	struct spf_answer a;
	char line[SPF_QUERY_LINE_MAX], *field[4], *p, *err = NULL;
	size_t len;
	int ch, i;

	log_init("spf_query", false);
	memset(&params, 0, sizeof(params));
	params.max_helpers = 1;
	params.timeout_ms = 10000;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			params.helper_path = optarg;
			break;
		case 'r':
			params.resolver = optarg;
			break;
		case 'n':
			params.receiver = optarg;
			break;
		case 't':
			params.timeout_ms = atoi(optarg);
			if (params.timeout_ms <= 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || params.helper_path == NULL ||
	    params.resolver == NULL || params.receiver == NULL)
		usage();
	if ((pool = spf_pool_new(&params, &err)) == NULL) {
		fprintf(stderr, "spf_query: %s\n", err);
		free(err);
		return 1;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		len = strcspn(line, "\r\n");
		line[len] = '\0';
		p = line;
		for (i = 0; i < 4; i++) {
			field[i] = p;
			if (p != NULL && (p = strchr(p, '\t')) != NULL)
				*p++ = '\0';
		}
		if (p != NULL || field[3] == NULL) {
			/* not four fields: say so on the answer line */
			printf("permerror\t\tspf_query: malformed input "
			    "line\n");
			fflush(stdout);
			continue;
		}
		q.client_addr = field[0];
		q.helo = field[1];
		q.sender = field[2];
		q.identity = field[3];
		spf_pool_check(pool, &q, &a);
		printf("%s\t%s\t%s\n", spf_result_name(a.result),
		    flat(a.explanation), flat(a.comment));
		fflush(stdout);
	}
	spf_pool_free(&pool);
	return 0;
}
