/*
 * dns_sync.c - blocking DNS lookups with a deadline, one libunbound
 * context per thread, for code that runs off the event loops (worker
 * threads, the SPF helper processes).
 *
 * Owns the per-thread contexts (a pthread key whose destructor deletes
 * them) and the resolver setting they are built from. Leaves the meaning
 * of an answer (SPF, DKIM key records) to the callers.
 *
 * Each lookup is asynchronous inside libunbound (ub_resolve_async) and
 * waited for with poll(2) on ub_fd() until the caller's deadline, so a
 * resolver that never answers costs the timeout, not libunbound's own
 * retry schedule; on timeout the query is cancelled (ub_cancel). The
 * context runs its resolver in a thread (ub_ctx_async(ctx, 1)): the
 * default mode forks a helper process (notes 0.12), which a threaded
 * daemon must not do.
 *
 * Answers come as rdata arrays (ub_result->data/len); every length in
 * them is checked against the rdata length before use (RFC 1035 3.3,
 * 3.4.1; RFC 3596 for AAAA; RFC 7208 3.3 for TXT character-strings,
 * which are concatenated).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unbound.h>

#include "clock.h"
#include "buf.h"
#include "dns_sync.h"
#include "dns_ub.h"
#include "xmalloc.h"

#define DNS_SYNC_MAX_RRS	128	/* records kept per answer */
#define DNS_SYNC_TXT_MAX	65535	/* concatenated TXT bytes kept */

/* the result of one ub_resolve_async, filled by its callback */
struct dns_sync_wait {
	bool	 done;
	int	 err;
	struct ub_result *result;	/* owned until taken */
};

static pthread_mutex_t resolver_lock = PTHREAD_MUTEX_INITIALIZER;
static char *resolver_addr;		/* owned; NULL: /etc/resolv.conf */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;

/* ctx_destroy - pthread key destructor: the thread's context */
static void
ctx_destroy(void *p)
{
	if (p != NULL)
		ub_ctx_delete(p);
}

static void
key_init(void)
{
	if (pthread_key_create(&ctx_key, ctx_destroy) != 0)
		abort();
}

/*
 * ctx_new - a context set up for resolver (NULL: the system's). Every
 * option must be set before the first resolve finalizes the context
 * (notes 7.3), so this sets them all at once.
 */
static struct ub_ctx *
ctx_new(const char *resolver, const char **error_r)
{
	struct ub_ctx *ub;
	int rc;

	if ((ub = ub_ctx_create()) == NULL) {
		*error_r = "cannot create a libunbound context";
		return NULL;
	}
	/* resolve in a thread of this process, never a forked one (0.12) */
	if ((rc = ub_ctx_async(ub, 1)) != 0) {
		*error_r = ub_strerror(rc);
		ub_ctx_delete(ub);
		return NULL;
	}
	if (dns_ub_configure(ub, resolver, error_r) == -1) {
		ub_ctx_delete(ub);
		return NULL;
	}
	return ub;
}

/* check_resolver - is it "IP@PORT" or "IP" (ub_ctx_set_fwd syntax)? */
static int
check_resolver(const char *resolver, const char **error_r)
{
	struct in6_addr a6;
	struct in_addr a4;
	char host[INET6_ADDRSTRLEN + 1];
	const char *at;
	char *end;
	size_t len;
	long port;

	at = strchr(resolver, '@');
	len = at != NULL ? (size_t)(at - resolver) : strlen(resolver);
	if (len == 0 || len >= sizeof(host))
		goto bad;
	memcpy(host, resolver, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &a4) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)
		goto bad;
	if (at != NULL) {
		errno = 0;
		port = strtol(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || errno != 0 ||
		    port < 1 || port > 65535)
			goto bad;
	}
	return 0;
bad:
	*error_r = "dns_resolver must be IP or IP@PORT";
	return -1;
}

int
dns_sync_configure(const char *resolver, const char **error_r)
{
	if (resolver != NULL && *resolver == '\0')
		resolver = NULL;
	if (resolver != NULL && check_resolver(resolver, error_r) == -1)
		return -1;
	pthread_mutex_lock(&resolver_lock);
	free(resolver_addr);
	resolver_addr = resolver != NULL ? xstrdup(resolver) : NULL;
	pthread_mutex_unlock(&resolver_lock);
	return 0;
}

/* thread_ctx - this thread's context, created on first use */
static struct ub_ctx *
thread_ctx(const char **error_r)
{
	struct ub_ctx *ub;
	char *resolver;

	pthread_once(&key_once, key_init);
	if ((ub = pthread_getspecific(ctx_key)) != NULL)
		return ub;
	pthread_mutex_lock(&resolver_lock);
	resolver = resolver_addr != NULL ? xstrdup(resolver_addr) : NULL;
	pthread_mutex_unlock(&resolver_lock);
	ub = ctx_new(resolver, error_r);
	free(resolver);
	if (ub != NULL && pthread_setspecific(ctx_key, ub) != 0) {
		ub_ctx_delete(ub);
		*error_r = "cannot store the thread's DNS context";
		return NULL;
	}
	return ub;
}

void
dns_sync_thread_reset(void)
{
	struct ub_ctx *ub;

	pthread_once(&key_once, key_init);
	if ((ub = pthread_getspecific(ctx_key)) != NULL) {
		(void)pthread_setspecific(ctx_key, NULL);
		ub_ctx_delete(ub);
	}
}

static void
on_result(void *arg, int err, struct ub_result *result)
{
	struct dns_sync_wait *w = arg;

	w->done = true;
	w->err = err;
	w->result = result;
}

/*
 * name_from_wire - an uncompressed wire-format name (RFC 1035 3.1) of at
 * most len bytes into text without the trailing dot; bytes that are not
 * printable, and dots or backslashes inside a label, become \DDD as in
 * master files (RFC 1035 5.1). Returns the bytes used or -1.
 */
static int
name_from_wire(const unsigned char *p, size_t len, char **out)
{
	struct buf b;
	size_t off = 0, total = 0, i;
	unsigned lab;
	unsigned char c;

	buf_init(&b, 4 * NS_MAXDNAME);
	for (;;) {
		if (off >= len)
			goto bad;
		lab = p[off++];
		if (lab == 0)
			break;
		/* compression pointers cannot occur in ub_result rdata */
		if (lab > 63 || lab > len - off)
			goto bad;
		total += lab + 1;
		if (total > 255)
			goto bad;
		if (b.len > 0)
			buf_append(&b, ".", 1);
		for (i = 0; i < lab; i++) {
			c = p[off + i];
			if (c > 0x20 && c < 0x7f && c != '.' && c != '\\')
				buf_append(&b, &c, 1);
			else
				buf_printf(&b, "\\%03u", c);
		}
		off += lab;
	}
	*out = b.len > 0 ? buf_steal(&b) : xstrdup(".");
	buf_deinit(&b);
	return (int)off;
bad:
	buf_deinit(&b);
	return -1;
}

/* txt_from_wire - concatenate the character-strings of one TXT rdata */
static int
txt_from_wire(const unsigned char *p, size_t len, struct dns_sync_rr *rr)
{
	struct buf b;
	size_t off = 0, n;

	buf_init(&b, DNS_SYNC_TXT_MAX);
	while (off < len) {
		n = p[off++];
		if (n > len - off || buf_append(&b, p + off, n) == -1) {
			buf_deinit(&b);
			return -1;
		}
		off += n;
	}
	rr->text_len = b.len;
	rr->text = b.len > 0 ? buf_steal(&b) : xstrdup("");
	buf_deinit(&b);
	return 0;
}

/* parse_rr - one rdata of type into rr; -1 when malformed */
static int
parse_rr(int type, const unsigned char *p, size_t len,
    struct dns_sync_rr *rr)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&rr->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&rr->addr;
	int n;

	rr->type = type;
	switch (type) {
	case ns_t_a:
		if (len != 4)
			return -1;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, p, 4);
		return 0;
	case ns_t_aaaa:
		if (len != 16)
			return -1;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, p, 16);
		return 0;
	case ns_t_mx:
		if (len < 3)
			return -1;
		rr->pref = (unsigned)p[0] << 8 | p[1];
		n = name_from_wire(p + 2, len - 2, &rr->name);
		if (n == -1)
			return -1;
		if ((size_t)n != len - 2) {
			free(rr->name);
			rr->name = NULL;
			return -1;
		}
		return 0;
	case ns_t_ptr:
	case ns_t_cname:
	case ns_t_ns:
		n = name_from_wire(p, len, &rr->name);
		if (n == -1)
			return -1;
		if ((size_t)n != len) {
			free(rr->name);
			rr->name = NULL;
			return -1;
		}
		return 0;
	case ns_t_txt:
	case 99:	/* SPF (RFC 4408, obsoleted by RFC 7208 3.1) */
		return txt_from_wire(p, len, rr);
	default:
		return -1;
	}
}

/* fill_answer - ub_result into answer (RFC 1035 4.1.1 rcodes) */
static void
fill_answer(int type, const struct ub_result *res,
    struct dns_sync_answer *answer)
{
	size_t count, i;
	bool malformed = false;

	if (res->rcode == ns_r_nxdomain) {
		answer->status = DNS_SYNC_NXDOMAIN;
		answer->error = "host not found";
		return;
	}
	if (res->rcode != ns_r_noerror) {
		answer->status = DNS_SYNC_TEMPFAIL;
		answer->error = res->rcode == ns_r_servfail ?
		    "temporary DNS failure (SERVFAIL)" :
		    res->rcode == ns_r_refused ?
		    "DNS query refused" : "DNS error";
		return;
	}
	if (!res->havedata || res->data == NULL || res->data[0] == NULL) {
		answer->status = DNS_SYNC_NODATA;
		answer->error = "no records of that type";
		return;
	}
	for (count = 0; res->data[count] != NULL; count++)
		;
	if (count > DNS_SYNC_MAX_RRS)
		count = DNS_SYNC_MAX_RRS;
	answer->rrs = xcalloc(count, sizeof(*answer->rrs));
	for (i = 0; i < count; i++) {
		if (res->len[i] < 0 || parse_rr(type,
		    (const unsigned char *)res->data[i], (size_t)res->len[i],
		    &answer->rrs[answer->n]) == -1) {
			memset(&answer->rrs[answer->n], 0,
			    sizeof(answer->rrs[0]));
			malformed = true;
			continue;
		}
		answer->n++;
	}
	if (answer->n == 0 && malformed) {
		answer->status = DNS_SYNC_TEMPFAIL;
		answer->error = "malformed DNS answer";
		return;
	}
	answer->status = DNS_SYNC_OK;
	answer->error = NULL;
}

/*
 * name_is_valid - a name DNS can carry: labels of 1 to 63 octets, at
 * most 253 octets without the trailing dot (RFC 1035 2.3.4), "." alone
 */
static bool
name_is_valid(const char *name)
{
	size_t len = strlen(name), lab = 0, i;

	if (len == 1 && name[0] == '.')
		return true;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (i = 0; i <= len; i++) {
		if (i < len && name[i] != '.') {
			lab++;
			continue;
		}
		if (lab == 0 || lab > 63)
			return false;
		lab = 0;
	}
	return true;
}

enum dns_sync_status
dns_sync_query(const char *name, int type, int timeout_ms,
    struct dns_sync_answer *answer)
{
	struct dns_sync_wait *w;
	struct ub_ctx *ub;
	struct pollfd pfd;
	const char *err = NULL;
	int64_t deadline, left;
	int id, rc;

	memset(answer, 0, sizeof(*answer));
	answer->status = DNS_SYNC_TEMPFAIL;
	if ((ub = thread_ctx(&err)) == NULL) {
		answer->error = err;
		return answer->status;
	}
	/*
	 * A name that cannot exist in DNS (RFC 1035 2.3.4) is not asked
	 * for: it does not exist, which is not a temporary failure.
	 */
	if (name == NULL || !name_is_valid(name)) {
		answer->status = DNS_SYNC_NXDOMAIN;
		answer->error = "invalid domain name";
		return answer->status;
	}
	/*
	 * The wait state is on the heap: a cancelled query's callback is
	 * never called (ub_cancel), but ub_process of a later lookup could
	 * still deliver an answer that raced the cancel, so the state must
	 * outlive this call in that case (it is leaked, never written into a
	 * dead stack frame).
	 */
	w = xcalloc(1, sizeof(*w));
	if ((rc = ub_resolve_async(ub, name, type, ns_c_in, w, on_result,
	    &id)) != 0) {
		free(w);
		answer->error = ub_strerror(rc);
		return answer->status;
	}
	deadline = clock_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	while (!w->done) {
		left = deadline - clock_ms();
		if (left <= 0)
			break;
		pfd.fd = ub_fd(ub);
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int)(left > 1000000 ? 1000000 : left));
		if (rc == -1 && errno != EINTR)
			break;
		if (rc > 0 && ub_process(ub) != 0)
			break;
	}
	if (!w->done) {
		if (ub_cancel(ub, id) == 0)
			free(w);
		/* else the answer is on its way: w stays for its callback */
		answer->error = "DNS timeout";
		return answer->status;
	}
	if (w->err != 0 || w->result == NULL)
		answer->error = w->err != 0 ? ub_strerror(w->err) :
		    "DNS error";
	else
		fill_answer(type, w->result, answer);
	if (w->result != NULL)
		ub_resolve_free(w->result);
	free(w);
	return answer->status;
}

void
dns_sync_answer_free(struct dns_sync_answer *answer)
{
	size_t i;

	if (answer == NULL)
		return;
	for (i = 0; i < answer->n; i++) {
		free(answer->rrs[i].name);
		free(answer->rrs[i].text);
	}
	free(answer->rrs);
	answer->rrs = NULL;
	answer->n = 0;
}
