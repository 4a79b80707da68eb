/* codegen/target.h - the targets nnc knows, and whether this build has them.
 *
 * Each target pairs a code generator with a runtime device.  Targets whose
 * backend is not built yet are listed (so --list-targets tells the truth)
 * and refused with a clear error.
 */
#ifndef NNC_TARGET_H
#define NNC_TARGET_H

#include <stdbool.h>

typedef struct TargetInfo {
  const char *name;
  const char *description;
  bool available;
} TargetInfo;

/* NULL-terminated. */
extern const TargetInfo nnc_targets[];
const TargetInfo *target_find(const char *name);

#endif
