"""The CNN's head: flatten the last feature maps, or average each over the image (GAP)."""

from hpo.space import CategoricalParam

PARAMS = [CategoricalParam("head", choices=("flatten", "gap"), default="flatten")]
