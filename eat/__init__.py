"""EAT reproduction: data, models, training and evaluation of Gan et al., ICCV 2023."""
