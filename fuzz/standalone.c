/*
 * standalone.c - main() for the fuzz targets built without libFuzzer:
 * run each file named on the command line (or stdin) through
 * LLVMFuzzerTestOneInput once, as libFuzzer would. This is how the
 * corpora run as regression tests (t/unit/test_fuzz_corpus.t) with any
 * compiler.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include "buf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	main(int, char **);

/* run_file - one input from fp */
static void
run_file(FILE *fp)
{
	struct buf in;
	char chunk[4096];
	size_t n;

	buf_init(&in, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&in, chunk, n);
	LLVMFuzzerTestOneInput((const uint8_t *)buf_cstr(&in), in.len);
	buf_deinit(&in);
}

int
main(int argc, char **argv)
{
	FILE *fp;
	int i;

	if (argc < 2) {
		run_file(stdin);
		return 0;
	}
	for (i = 1; i < argc; i++) {
		if ((fp = fopen(argv[i], "rb")) == NULL) {
			perror(argv[i]);
			return 1;
		}
		run_file(fp);
		fclose(fp);
	}
	return 0;
}
