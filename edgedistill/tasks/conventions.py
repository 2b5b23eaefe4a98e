"""The pixel conventions a teacher may have been trained with, as Preprocessing.

A teacher only gives its own accuracy when it is fed as its owner fed it in training. The
common conventions are named presets; a declaration is a preset plus the fields it overrides
(`TeacherPreprocess`). Every preset first brings raw values to [0, 1] with the data's full
scale (255 for 8-bit images), then:

- `unit`: nothing more ([0, 1]);
- `imagenet`: torchvision's ImageNet mean and std (their channel average for grey images);
- `signed`: mean 0.5, std 0.5 ([-1, 1], the Inception / many TF models convention);
- `raw`: times 255 (0..255, as Caffe-era and some TFLite models take it);
- `data`: the mean and std of the task's training images (edgedistill's own default).
"""

from __future__ import annotations

from edgedistill.errors import UserInputError, describe_validation
from edgedistill.tasks.preprocess import scale_note
from edgedistill.tasks.recipe import PRESETS, Preprocessing, TeacherPreprocess
from edgedistill.tasks.table import ImageFacts

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _per_channel(values: tuple[float, ...] | float, channels: int) -> list[float]:
    if isinstance(values, float):
        return [values] * channels
    if channels == 3:
        return list(values)
    return [round(sum(values) / len(values), 6)] * channels


# preset -> (channels, the task's preprocessing, unit scale) -> (scale, mean, std)
_PRESET_VALUES = {
    "unit": lambda c, data, unit: (unit, [0.0] * c, [1.0] * c),
    "imagenet": lambda c, data, unit: (
        unit,
        _per_channel(IMAGENET_MEAN, c),
        _per_channel(IMAGENET_STD, c),
    ),
    "signed": lambda c, data, unit: (unit, [0.5] * c, [0.5] * c),
    "raw": lambda c, data, unit: (unit * 255.0, [0.0] * c, [1.0] * c),
    "data": lambda c, data, unit: (data.scale, list(data.mean), list(data.std)),
}


def _describe(name: str | None, scale: float, mean, std) -> str:
    preset = {
        "unit": "values in [0, 1]",
        "imagenet": "normalised with torchvision's ImageNet mean and std",
        "signed": "values in [-1, 1]",
        "raw": "values 0..255",
        "data": "normalised with the mean and std of the training images",
    }
    if name is not None:
        return preset[name]
    return f"{scale_note(scale)}, minus mean {mean}, divided by std {std}"


def teacher_preprocessing(
    declared: TeacherPreprocess, data: Preprocessing, facts: ImageFacts, where: str
) -> Preprocessing:
    """The Preprocessing a declaration means for this data; `data` is the task's default (the
    data's own mean/std, its size and channel order), `where` names the flag or field."""
    channels = facts.channels
    name = declared.preset or "unit"
    scale, mean, std = _PRESET_VALUES[name](channels, data, facts.unit_scale)
    overridden = any(value is not None for value in (declared.scale, declared.mean, declared.std))
    scale = declared.scale if declared.scale is not None else scale
    mean = declared.mean if declared.mean is not None else mean
    std = declared.std if declared.std is not None else std
    for field, values in (("mean", mean), ("std", std)):
        if len(values) != channels:
            raise UserInputError(
                f"{where}: {field} has {len(values)} values but the data has {channels} channel(s)"
            )
    order = declared.channel_order or data.channel_order
    if (order == "gray") != (channels == 1) and data.channel_order != "as-is":
        raise UserInputError(
            f"{where}: channel_order {order} does not fit data with {channels} channel(s)"
        )
    size = tuple(declared.resize) if declared.resize is not None else tuple(data.resize)
    interpolation = declared.interpolation or data.interpolation
    look = _describe(None if overridden else name, scale, mean, std)
    return Preprocessing(
        description=(
            f"{order} image, {look} (the teacher's preprocessing), resized to "
            f"{size[0]}x{size[1]} ({interpolation}, half-pixel centres), laid out C x H x W"
        ),
        resize=size,
        scale=scale,
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        channel_order=order,
        interpolation=interpolation,
    )


def preset_preprocessing(name: str, data: Preprocessing, facts: ImageFacts) -> Preprocessing:
    """A preset as it applies to this data (size, channel order and interpolation kept)."""
    return teacher_preprocessing(
        TeacherPreprocess(preset=name),
        data,
        facts,
        f"preset {name}",  # type: ignore[arg-type]
    )


_LIST_FIELDS = ("mean", "std")


def parse_declaration(text: str, flag: str = "--teacher-preprocess") -> TeacherPreprocess:
    """`imagenet`, or `unit,channel_order=bgr,resize=224x224,interpolation=bicubic`, or
    `scale=1/255,mean=0.5/0.5/0.5,std=0.5/0.5/0.5,layout=nhwc` (fields override the preset)."""
    from pydantic import ValidationError

    values: dict = {}
    for position, item in enumerate(part.strip() for part in text.split(",")):
        key, sep, value = item.partition("=")
        if not sep and position == 0:
            values["preset"] = item
        elif not sep:
            raise UserInputError(f"{flag} {text}: {item!r} is not FIELD=VALUE")
        elif key in _LIST_FIELDS:
            values[key] = value.split("/")
        elif key == "resize":
            values[key] = value.lower().split("x")
        else:
            values[key] = value
    try:
        return TeacherPreprocess.model_validate(values)
    except ValidationError as exc:
        raise UserInputError(
            f"{flag} {text}: {describe_validation(exc, locations=True)} (presets: "
            f"{', '.join(PRESETS)}; fields: scale, mean, std, channel_order, resize, "
            "interpolation, layout)"
        ) from None
