"""Neural network modules: the BERT encoder and its checkpoint loading."""

from jaxkd.models.bert import BertConfig, BertModel, load_bert

__all__ = ["BertConfig", "BertModel", "load_bert"]
