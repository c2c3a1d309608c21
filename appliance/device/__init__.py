"""The box's own hardware and health: the only package that imports gpiozero, pyserial, psutil."""
