#include "models/layer_op.h"

namespace epsim {

const char* to_string(Block b) {
  switch (b) {
    case Block::AttnIn: return "attn_in";
    case Block::Attention: return "attention";
    case Block::AttnOut: return "attn_out";
    case Block::MoeIn: return "moe_in";
    case Block::Shared: return "shared";
    case Block::Experts: return "experts";
    case Block::MoeOut: return "moe_out";
    case Block::Dense: return "dense";
    case Block::Head: return "head";
    case Block::MtpIn: return "mtp_in";
  }
  return "?";
}

}  // namespace epsim
