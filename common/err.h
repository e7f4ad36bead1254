/* err: the last error message of the calling thread.
 * Every function that returns -1 or NULL sets it, so the caller can report
 * why without each module inventing its own error channel. */
#ifndef SAV_ERR_H
#define SAV_ERR_H

/* Sets the calling thread's error message (printf-style, truncated at 512 bytes). */
void err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns the calling thread's last error message; owned by the module, valid until the next err_set. */
const char *err_get(void);

#endif
