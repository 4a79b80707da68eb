# lit configuration for nnc.  Directories by stage: Frontend, Diagnostics, IR,
# Passes, CodeGen, Runtime, E2E; shared inputs live in Inputs/.
import os
import shutil
import lit.formats

config.name = "nnc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".nn", ".nnir", ".kir", ".test"]
config.excludes = ["Inputs", "unit", "fuzz", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.nnc_obj_root, "test")

config.environment["NNC_STDLIB"] = os.path.join(config.nnc_src_root, "stdlib")
config.environment["NNC_COLOR"] = "never"
for var in ("HOME", "TMPDIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]

# Sanitizer builds (-DNNC_SANITIZE=ON, docs/hardening.md): leak suppressions,
# the shadow gap CUDA needs, UBSan stack traces; settings from the
# environment win.
if getattr(config, "sanitize", "OFF").upper() in ("ON", "1", "TRUE", "YES"):
    supp = os.path.join(config.nnc_src_root, "test", "sanitizer", "lsan.supp")
    config.environment["ASAN_OPTIONS"] = "protect_shadow_gap=0:detect_leaks=1"
    config.environment["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % supp
    config.environment["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    config.available_features.add("asan")
    config.substitutions.append(("%lib-san", "-fsanitize=address,undefined"))  # libnnrt.a is instrumented
config.substitutions.append(("%lib-san", ""))
for var in ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]

config.substitutions.append(("%nnc", os.path.join(config.nnc_obj_root, "nnc")))
config.substitutions.append(("%inputs", os.path.join(config.nnc_src_root, "test", "Inputs")))
config.substitutions.append(("%examples", os.path.join(config.nnc_src_root, "examples")))
config.substitutions.append(("%stdlib", os.path.join(config.nnc_src_root, "stdlib")))
config.substitutions.append(("%python", config.python))
# Backend plugins (test/Plugins): the public header, the build tree (for
# cmake --install into a test prefix), cmake and a C compiler.
config.substitutions.append(("%api-include", os.path.join(config.nnc_src_root, "include")))
config.substitutions.append(("%build-root", config.nnc_obj_root))
config.substitutions.append(("%cmake", getattr(config, "cmake", "cmake")))
config.substitutions.append(("%host-cc", getattr(config, "cc", "cc") or "cc"))
config.environment.pop("NNC_PLUGIN_PATH", None)
config.substitutions.append(("%FileCheck", os.path.join(config.llvm_tools_dir, "FileCheck")))
for tool in ("FileCheck", "not", "count", "split-file"):
    config.substitutions.append(("\\b%s\\b" % tool if tool != "not" else "\\bnot\\b",
                                 os.path.join(config.llvm_tools_dir, tool)))

if config.ptxas and os.path.exists(config.ptxas):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", config.ptxas))
if os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    config.available_features.add("fashion-mnist")
# Open MPI's launcher (.ci/bootstrap: openmpi-bin) for the data-parallel
# tests (test/Runtime/mpi*.test); without it they are UNSUPPORTED.  Two
# ranks on a 2-core CI machine: --oversubscribe; CI runs as root.
mpirun = shutil.which("mpirun")
if mpirun:
    config.available_features.add("mpirun")
    launch = mpirun + " --oversubscribe --allow-run-as-root"
    if "asan" in config.available_features:
        # Open MPI's libraries are built without frame pointers: only the
        # slow unwinder reaches their frames, which lsan.supp names.
        launch = "env LSAN_OPTIONS=%s:fast_unwind_on_malloc=0 %s" % (config.environment["LSAN_OPTIONS"], launch)
    config.substitutions.append(("%mpirun", launch))
for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PMIX_RANK"):
    config.environment.pop(var, None)  # a suite run under mpirun: its trainers are single processes
# The text corpus of examples/gpt.nn and gpt-small.nn (.ci/bootstrap).
if os.path.exists(os.path.join(config.nnc_src_root, "examples", "data", "shakespeare.txt")):
    config.available_features.add("shakespeare")
# Graphviz's dot renders --emit=dot output (the README's example).
if shutil.which("dot"):
    config.available_features.add("graphviz")
# Long tests (full datasets, many epochs) run only when asked for.
if os.environ.get("NNC_LONG_TESTS"):
    config.available_features.add("long")

# OpenCL: clang-19 checks OpenCL C offline; an installed ICD (PoCL in CI)
# runs the opencl, fpga and asic trainers.
if shutil.which("clang-19"):
    config.available_features.add("clang-cl")
    config.substitutions.append(("%clang-cl", "clang-19 -x cl -cl-std=CL1.2 -fsyntax-only -Werror "
                                 "-Xclang -finclude-default-header"))
import glob
if glob.glob("/etc/OpenCL/vendors/*.icd"):
    config.available_features.add("opencl-device")

# Probes of the tools and Python modules optional tests need.
import subprocess


def succeeds(argv, timeout):
    """Does argv run and exit 0 within timeout seconds (its output unseen)?"""
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def python_imports(python, module, timeout):
    """Can the interpreter `python` import `module` (within timeout seconds)?"""
    return succeeds([python, "-c", "import " + module], timeout)


# CUDA: a GPU the driver can see (`nvidia-smi -L` lists it) runs the gpu
# trainers; without one, they must fail with one clear line.
if succeeds(["nvidia-smi", "-L"], 30):
    config.available_features.add("cuda-gpu")

# PyTorch (Debian's python3-torch, seen only by /usr/bin/python3): the
# oracle of the optimizer and schedule tests (test/E2E/optimizer-torch.test).
if python_imports("/usr/bin/python3", "torch", 120):
    config.available_features.add("torch")
    config.substitutions.append(("%torch-python", "/usr/bin/python3"))

# NumPy, the oracle of numeric tests (test/Inputs/check-reductions.py): in
# lit's Python, else in Debian's (python3-torch brings python3-numpy).
for py in (config.python, "/usr/bin/python3"):
    if python_imports(py, "numpy", 60):
        config.available_features.add("numpy")
        config.substitutions.append(("%numpy-python", py))
        break

# ONNX export: nnc built with it (CMakeLists.txt), an nnc without it for
# the message such a build gives, and onnxruntime (from PyPI, which
# .ci/bootstrap installs) in Debian's Python to run the models.
if getattr(config, "onnx", "OFF").upper() in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("onnx-export")
    # protoc-c prints a model as text: --decode=onnx.ModelProto with onnx.proto
    proto = config.onnx_proto
    config.substitutions.append(("%onnx-decode", "%s --proto_path=%s --decode=onnx.ModelProto %s" % (
        config.protoc_c, os.path.dirname(proto), proto)))
config.substitutions.append(("%no-onnx-nnc", config.nnc_without_onnx))
if python_imports("/usr/bin/python3", "onnxruntime", 120):
    config.available_features.add("onnxruntime")
    config.substitutions.append(("%onnx-python", "/usr/bin/python3"))
