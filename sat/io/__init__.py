"""Reading and writing images: NIfTI, NRRD, MetaImage, DICOM folders and zips (with header
checks before any voxel is read), mask and probability files, result folders, DICOM-SEG and the
preview image. ``data`` and ``infer`` both use it; it imports neither."""
