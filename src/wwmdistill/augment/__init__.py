"""TinyBERT's data augmentation made to work for Chinese: word candidates from a WWM teacher.

TinyBERT replaces a single-piece word by the MLM's top predictions at a [MASK] and a multi-piece
word by its GloVe neighbours; it skips every word that is not [a-z], so it augments nothing in
Chinese, and there is no Chinese GloVe. Here words come from the configured segmenter and every
candidate comes from the masked LM: a word of L characters (L tokens with a Chinese BERT vocab)
has all L tokens masked at once, as the whole-word-masking teacher was trained, and its
candidates are the best whole-word fillers of the same length by summed log-probability.
Synonyms from a Cilin-style file can be added.

- `words`: word resources: stopword and Cilin synonym lists, which characters are CJK;
- `slots`: a text's replaceable words (`Slot`, `TextPlan`) and how choices edit the text;
- `filler`: the `Augmenter`: segments texts into slots and fills them with the masked LM;
- `sampling`: TinyBERT's draws of augmented copies per example, group by group over a split;
- `slices`: one slice of a train split augmented into a file (the stage's entry) and slices merged.
"""
