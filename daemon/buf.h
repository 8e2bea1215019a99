/*
 * buf.h - length-tracked, self-growing byte buffer with an owner-set cap.
 *
 * Text built from network input goes here, never into fixed arrays. The
 * data is always NUL-terminated (one byte beyond len) so that short text
 * can be handed to C string functions, but it may contain NUL bytes.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char	*data;		/* owned; NULL until the first append */
	size_t	 len;
	size_t	 cap;
	size_t	 max;		/* 0: no cap */
};

/* buf_init - empty buffer that refuses to grow beyond max bytes (0: none) */
void	buf_init(struct buf *, size_t max);
void	buf_deinit(struct buf *);
/* buf_reset - forget the contents, keep the memory */
void	buf_reset(struct buf *);
/*
 * buf_append - add n bytes; returns -1 (and adds nothing) when that would
 * pass the cap, 0 otherwise.
 */
int	buf_append(struct buf *, const void *, size_t n);
int	buf_append_str(struct buf *, const char *);
int	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* buf_cstr - the contents as a C string, "" when empty (lent) */
const char *buf_cstr(const struct buf *);
/* buf_steal - hand the contents to the caller (NUL-terminated), reset */
char	*buf_steal(struct buf *);
/* buf_consume - drop the first n bytes */
void	buf_consume(struct buf *, size_t n);

#endif
