/* run_dir.h — the output directory of a long run (pd_train, pd_distill_sid): creating it,
 * guarding its checkpoint, cleaning up after killed writers, appending CSV logs.
 *
 * Contract (the directory itself is made by pd_make_dirs): rd_check_checkpoint enforces the resume rule every run follows: an
 * existing checkpoint is never overwritten unless the run resumes from it, and resuming needs
 * one. rd_remove_stale_tmp deletes the "<file>.tmp.<pid>" files of the checkpoint's directory
 * that a writer killed inside an atomic write leaves behind (checkpoint, snapshot, export: the
 * file under its final name is intact), only those whose process is gone; rd_remove_stale_tmp_of
 * only those of one file.
 * rd_append_csv appends one line to a CSV log, writing the header first when the file is new;
 * the logs are a convenience (the checkpoint is the record), so it never fails.
 */
#ifndef PD_DISTILL_RUN_DIR_H
#define PD_DISTILL_RUN_DIR_H

#include "pixdiff.h"

/* exists && !resume, or !exists && resume: fails; dir_name names the output directory's setting
 * in the message ("output.dir (--out)"). */
int rd_check_checkpoint(const char *ckpt, int resume, const char *dir_name, pd_error *err);
void rd_remove_stale_tmp(const char *ckpt);
/* Only "<path>.tmp.<pid>" (for outputs in a folder that is not the run's own). */
void rd_remove_stale_tmp_of(const char *path);
/* dir/name gets `line` (without the newline), after `header` when the file did not exist. */
void rd_append_csv(const char *dir, const char *name, const char *header, const char *line);

#endif
