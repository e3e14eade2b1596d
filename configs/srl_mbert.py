"""SRL with mbert: the paper's settings (appendix Table 6 and A.2); see configs/common.py."""

from configs import common


def get_config():
  return common.srl(common.paper_config("srl", "mbert"))
