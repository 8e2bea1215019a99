/*
 * header_address.h - the addr-specs of an address-list header value.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_HEADER_ADDRESS_H
#define POSTERN_HEADER_ADDRESS_H

#include <stddef.h>

/*
 * header_addresses - every address in value ("A <a@x>, b@y (c), G: d@z;")
 * as "local@domain" strings, in order; *addrs_r is an owned array of
 * owned strings (NULL when none). Returns how many.
 */
size_t	header_addresses(const char *value, size_t len, char ***addrs_r);
void	header_addresses_free(char **addrs, size_t n);

#endif
