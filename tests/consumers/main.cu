// Uses ssmkit as a downstream project would. Needs no GPU: it validates arguments on the host
// and instantiates one kernel launcher without calling it.
#include <ssmkit/ssmkit.cuh>

#include <cstdio>
#include <cstring>

int main() {
  ssmkit::SelectiveScanParams p =
      ssmkit::make_selective_scan_params(ssmkit::DType::kFloat32, /*batch=*/2, /*dim=*/64,
                                         /*seqlen=*/128, /*dstate=*/16);

  // Every pointer is still null: validation must fail and name the first one, u.
  const ssmkit::Status st = ssmkit::can_implement(p);
  if (st.ok() || st.code() != ssmkit::StatusCode::kInvalidArgument) {
    std::fprintf(stderr, "can_implement accepted null pointers\n");
    return 1;
  }
  const char* msg = st.message();
  if (std::strncmp(msg, "u", 1) != 0 || (msg[1] != ' ' && msg[1] != ':')) {
    std::fprintf(stderr, "unexpected message: %s\n", msg);
    return 1;
  }

  // Instantiate (but do not run) a compile-time configured launcher.
  ssmkit::Status (*volatile launch)(const ssmkit::SelectiveScanParams&, cudaStream_t) =
      &ssmkit::selective_scan_fwd<float, 16>;
  if (launch == nullptr) return 1;

  std::printf("ssmkit %d.%d.%d: can_implement says \"%s\" (%s)\n", SSMKIT_VERSION_MAJOR,
              SSMKIT_VERSION_MINOR, SSMKIT_VERSION_PATCH, msg, ssmkit::to_string(st.code()));
  return 0;
}
