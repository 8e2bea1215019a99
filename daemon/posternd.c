/* posternd.c - placeholder main until the daemon lands (lead engineer) */
#include "config.h"
int main(void);
int
main(void)
{
	return 1;
}
