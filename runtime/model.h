/* runtime/model.h - what a compiled trainer tells the runtime about itself.
 *
 * nnc emits one constant RtModelDesc per trained program (plain C data,
 * compiled and linked with the kernels) and a main() that calls
 * rt_trainer_main().  The runtime allocates the buffers on the chosen
 * device, initialises parameters and states, loads the data, and runs the
 * train and eval plans: each plan is a list of kernel launches.  Nothing
 * here knows about the compiler; the compiler knows this header.
 *
 * Versioned: fields are only ever appended, and `abi` says which version a
 * trainer was built for.
 */
#ifndef NNRT_MODEL_H
#define NNRT_MODEL_H

#include <stdint.h>

/* 2: code_kind appended; the trainer picks its device from it, never from
 * the target's name.  3: the prediction (output_buf, output_name) and the train
 * block's validation appended.  4: steps, schedule and context (text data).  5: the train plan's
 * split for data-parallel training (ntrain_grad, grad_bufs). */
#define RT_MODEL_ABI 5

/* ORDER KBufKind: same members and order as KBufKind in ir/kernel.h. */
typedef enum {
  RT_BUF_INPUT,
  RT_BUF_LABEL,
  RT_BUF_PARAM,
  RT_BUF_STATE,
  RT_BUF_TEMP,
  RT_BUF_LOSS,
  RT_BUF_METRIC,
  RT_BUF_SCALARS, /* f32: [0] step, [1] batch size, [2 + k] hyper k, [2 + nhypers] 1 training / 0 eval */
  RT_BUF_OUTPUT,  /* the prediction: batched f32, computed by both plans, read after evaluation (--predict) */
} RtBufKind;

/* ORDER NncCodeKind (include/nnc/backend.h): what a trainer's code is, and
 * so which kind of device runs it.  The device layer says which kinds load
 * which code (rt_device_kind_for); the target's name plays no part. */
typedef enum {
  RT_MODEL_CODE_NATIVE = 1,   /* `native`: functions linked into the program (the cpu device) */
  RT_MODEL_CODE_PTX = 2,      /* `code`: PTX text (CUDA devices) */
  RT_MODEL_CODE_OPENCL_C = 3, /* `code`: OpenCL C source, built with code_options (OpenCL devices) */
} RtModelCode;

/* ORDER ScheduleKind (ir/ir.h): the learning-rate schedule, a multiplier
 * of the optimizer's hyper-parameter `lr` at each step (rt_schedule_lr). */
typedef enum { RT_SCHEDULE_CONSTANT, RT_SCHEDULE_STEP, RT_SCHEDULE_COSINE } RtScheduleKind;

typedef struct RtSchedule {
  int kind;             /* RtScheduleKind */
  int64_t every;        /* step: steps between two decays */
  double factor;        /* step: the multiplier's factor at each decay */
  int64_t warmup;       /* cosine: steps of linear warm-up */
  double min;           /* cosine: the multiplier at the end of the run */
} RtSchedule;

typedef struct RtBufDesc {
  const char *name;     /* parameter path, "x", "t12", ... */
  RtBufKind kind;
  int dtype;            /* 0 = f32, 1 = i32 */
  int rank;
  int64_t dims[8];      /* per-sample dims (params and states: their dims) */
  int batched;          /* holds one such tensor per sample of the batch */
  int init_kind;        /* params and states: RtInitKind (runtime/init.h) */
  double init_a, init_b;
  int slot;             /* temps: buffers with the same slot share memory */
} RtBufDesc;

typedef struct RtLaunchDesc {
  int kernel;           /* index into kernel_names / native */
  int nargs;
  const int *args;      /* buffer indices, in the kernel's parameter order; B follows them */
  int64_t range;        /* iterations of the kernel's outermost loop... */
  int range_batched;    /* ...times B when set */
} RtLaunchDesc;

/* A native (CPU) kernel: args[i] points at the i-th argument's value (a
 * buffer pointer, then the int64 batch size); [begin, end) is the part of
 * the outermost loop this call runs. */
typedef void (*RtModelKernel)(void **args, int64_t begin, int64_t end);

typedef struct RtModelDesc {
  int abi;                          /* RT_MODEL_ABI */
  const char *name;                 /* the model */
  const char *target;               /* the nnc target it was built for: reported, never interpreted */
  const char *nnc_version;

  int nbufs;
  const RtBufDesc *bufs;
  int input_buf, label_buf, loss_buf, scalars_buf; /* -1 when absent */
  int nmetrics;
  const char *const *metric_names;
  const int *metric_bufs;
  int nhypers;
  const char *const *hyper_names;
  const double *hyper_values;       /* defaults from the .nn file */

  /* The train block's settings: defaults for the command line. */
  int data_kind;                    /* RtDataKind, 0 = none */
  const char *data_path, *test_path, *label_column;
  double scale;
  int64_t batch, epochs, seed;
  int shuffle;
  int64_t label_bound;              /* i32 labels must lie in [0, bound); 0 = unchecked */

  /* Code: native functions, or PTX / OpenCL C text with kernel names (code_kind says which). */
  int nkernels;
  const char *const *kernel_names;
  const RtModelKernel *native;      /* RT_MODEL_CODE_NATIVE; NULL otherwise */
  const char *code;                 /* PTX or OpenCL C text; NULL for native code */
  uint64_t code_size;
  const char *code_options;         /* OpenCL build options */

  int ntrain;
  const RtLaunchDesc *train;        /* one training step */
  int neval;
  const RtLaunchDesc *eval;         /* one evaluation step */

  int single_work_item;  /* OpenCL kernels run as one work-item each (FPGA dialects) */
  int batch_arg_i32;     /* B is passed as an int32, not an int64; every buffer stays under 2^31 elements */

  /* What computes each buffer, for --check-numerics messages: [nbufs]
   * strings such as "exp at model.nn:7:12" (temps, the loss, metrics;
   * NULL entries elsewhere), or NULL for none. */
  const char *const *buf_sources;

  /* ABI 2: what the code is (RtModelCode); the trainer opens a device that runs it. */
  int code_kind;

  /* ABI 3: the prediction (`output NAME`): an RT_BUF_OUTPUT buffer the eval
   * plan computes, read after it by --predict; -1 when the
   * model has none.  output_name is the binding's name (the CSV header). */
  int output_buf;
  const char *output_name;
  /* ABI 3: the train block's `validation`: the fraction of the training data held out; 0 = none. */
  double validation;

  /* ABI 4: `steps`, the run's length in optimizer steps (0 = by epochs
   * alone; epochs is then 0 when steps alone sets the length), the lr
   * schedule, and text data's window length in bytes (0 for other data). */
  int64_t steps;
  RtSchedule schedule;
  int64_t context;

  /* ABI 5: data-parallel training (runtime/comm.h).  train[0 ..
   * ntrain_grad) computes the loss and every parameter's gradient into the
   * grad_bufs (temps, in buffer order); train[ntrain_grad .. ntrain) is the
   * optimizer update that reads them.  Between the two, N ranks sum the
   * gradients.  ntrain_grad -1: the plan does not split (one process only). */
  int ntrain_grad;
  int ngrad_bufs;
  const int *grad_bufs;
} RtModelDesc;

/* The trained program's main: command line, device, data, training. */
int rt_trainer_main(int argc, char **argv, const RtModelDesc *m);

#endif
