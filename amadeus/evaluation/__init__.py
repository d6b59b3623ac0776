"""How good a model is: likelihood of held-out music, generated music against real music feature
by feature, and how well it follows controls. train.py and quantize.py use `likelihood.mean_loss`;
evaluate.py runs `report.evaluate`."""
